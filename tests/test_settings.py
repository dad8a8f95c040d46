"""Settings files: strict, one-line errors that name the file and the key."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from companion.cli.config_cmd import HEADER, render_documented
from companion.config import REPO_CONFIG, Config, load_config
from companion.settings import ConfigError, between, build, read_yaml, setting


@dataclass(frozen=True)
class Inner:
    level: int = setting(2, check=between(0, 3))
    names: tuple[str, ...] = setting(())


@dataclass(frozen=True)
class Outer:
    title: str = setting("x")
    device: int | str | None = setting(None)
    ratio: float = setting(1.0)
    inner: Inner = field(default_factory=Inner)


def test_defaults_fill_missing_keys():
    assert build(Outer, {"title": "y"}, source="f.yaml") == Outer(title="y")


def test_an_empty_file_means_all_defaults():
    assert build(Outer, None, source="f.yaml") == Outer()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"titel": "y"}, "f.yaml: titel: unknown key; did you mean 'title'?"),
        ({"inner": {"levle": 1}}, "f.yaml: inner.levle: unknown key; did you mean 'level'?"),
        ({"inner": {"level": 7}}, "f.yaml: inner.level: expected a number from 0 to 3, got 7"),
        ({"inner": {"level": "high"}}, "f.yaml: inner.level: expected an integer, got 'high'"),
        ({"inner": {"level": True}}, "f.yaml: inner.level: expected an integer, got True"),
        ({"ratio": "fast"}, "f.yaml: ratio: expected a number, got 'fast'"),
        ({"device": [1]}, "f.yaml: device: expected an integer or a string or null, got [1]"),
        ({"inner": {"names": ["a", 3]}}, "f.yaml: inner.names[1]: expected a string, got 3"),
        ({"inner": 5}, "f.yaml: inner: expected a mapping, got 5"),
    ],
)
def test_bad_values_name_the_file_and_key(data, message):
    with pytest.raises(ConfigError) as err:
        build(Outer, data, source="f.yaml")
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_a_top_level_list_is_rejected():
    with pytest.raises(ConfigError, match=r"f\.yaml: expected a mapping of keys, got list"):
        build(Outer, [1, 2], source="f.yaml")


def test_yaml_syntax_errors_say_where(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vad:\n  aggressiveness: [1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_yaml(bad)
    assert str(err.value).startswith(f"{bad}: not valid YAML: line ")


def test_ints_are_accepted_for_floats():
    assert build(Outer, {"ratio": 2}, source="f").ratio == 2.0


def test_the_shipped_config_documents_exactly_the_defaults():
    text = REPO_CONFIG.read_text(encoding="utf-8")
    assert text.strip() == (HEADER + "\n".join(render_documented(Config())).lstrip("\n")).strip(), (
        "config.yaml is out of date: regenerate it with 'companion config defaults > config.yaml'"
    )
    assert load_config(REPO_CONFIG).config == Config()


def test_explicit_config_wins_and_must_exist(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("vad:\n  end_silence_ms: 700\n", encoding="utf-8")
    assert load_config(cfg).config.vad.end_silence_ms == 700
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")


def test_user_config_is_found_before_the_repo_default(isolated_home: Path):
    user = isolated_home / "xdg-config" / "companion" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text("llm:\n  max_sentences: 2\n", encoding="utf-8")
    loaded = load_config()
    assert loaded.path == user
    assert loaded.config.llm.max_sentences == 2


def test_config_check_command_reports_one_line(tmp_path: Path):
    bad = tmp_path / "c.yaml"
    bad.write_text("stt:\n  threads: zero\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "config", "check", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"companion: {bad}: stt.threads: expected an integer, got 'zero'"
