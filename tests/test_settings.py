"""Settings files: strict, one-line errors that name the file and the key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from companion.cli.config_cmd import HEADER, render_documented
from companion.config import REPO_CONFIG, Config, load_config
from companion.persona import load_persona
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


# ---- limits on files a user might share (issue 15; companion/limits.py) ----------------------


def laughs(levels: int = 9, width: int = 9) -> str:
    """A billion-laughs alias bomb: ``width ** levels`` strings once expanded."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def timed_error(path: Path, load=read_yaml) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load(path)
    return str(err.value), time.monotonic() - started


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (laughs() + "log_level: *a8\n", "expands to more than 100000 values"),
        ("x: " + "[" * 2000 + "]" * 2000 + "\n", "nest"),  # libyaml's own limit (1000) or ours
        ("x: " + "[" * 900 + "]" * 900 + "\n", "nested more than 32 levels deep"),
        ("a: " + "{k: " * 900 + "1" + "}" * 900 + "\n", "nested more than 32 levels deep"),
        ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)), "nested more than 32 levels deep"),
        ("a: &a [*a]\n", "refers to a value that holds it"),
        ("s: &s " + "x" * 100_000 + "\nl: [" + ", ".join(["*s"] * 50) + "]\n", "more than 4000000 characters"),
        ("l: [" + ", ".join(["*s"] * 300) + "]\n", "found undefined alias"),
    ],
)
def test_yaml_bombs_and_deep_nesting_are_one_line_errors_at_once(tmp_path: Path, text: str, message: str):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    error, took = timed_error(path)
    assert error.startswith(f"{path}: ") and message in error and "\n" not in error
    assert len(error) < 300 and took < 2.0


def test_too_many_aliases_are_refused(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("s: &s x\nl: [" + ", ".join(["*s"] * 300) + "]\n", encoding="utf-8")
    assert "more than 256 aliases" in timed_error(path)[0]


def test_a_huge_file_is_refused_before_it_is_parsed(tmp_path: Path):
    path = tmp_path / "persona.yaml"
    with path.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # 50 MB (sparse)
    error, took = timed_error(path)
    assert error == f"{path}: the file is 50.0 MB; settings files are limited to 512.0 KB"
    assert took < 0.5


def test_a_fifo_or_device_is_refused_not_read_forever(tmp_path: Path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    assert timed_error(fifo)[0] == f"{fifo}: cannot read: {fifo} is not a regular file"
    assert timed_error(Path("/dev/zero"))[0] == "/dev/zero: cannot read: /dev/zero is not a regular file"


def test_bad_values_are_shortened_in_messages():
    with pytest.raises(ConfigError) as err:
        build(Outer, {"title": ["x" * 10_000] * 1000}, source="f.yaml")
    assert str(err.value).startswith("f.yaml: title: expected a string, got [")
    assert len(str(err.value)) < 150
    with pytest.raises(ConfigError) as err:
        build(Outer, {"k" * 5000 + "\nkey": 1}, source="f.yaml")
    assert len(str(err.value)) < 450 and "\n" not in str(err.value)


def test_a_bomb_in_config_log_level_is_one_line_from_the_cli(tmp_path: Path):
    bad = tmp_path / "c.yaml"
    bad.write_text(laughs() + "log_level: *a8\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "config", "check", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith(f"companion: {bad}: line ") and proc.stderr.count("\n") == 1


# ---- personas --------------------------------------------------------------------------------


PERSONA = "name: P\nsystem_prompt: You are a test.\n"


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "a/b", "x" * 300, "p\ud800", "p\x00", "", "rocky.yaml", "..", "~root"]
)
def test_persona_names_are_names_not_paths(tmp_path: Path, name: str):
    (tmp_path / "secret.yaml").write_text("password: hunter2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_persona(name, tmp_path)
    error = str(err.value)
    assert error.startswith("persona: bad persona name ") and error.endswith("use 1-64 letters, digits, '_' or '-'")
    assert "hunter2" not in error and str(tmp_path) not in error and len(error) < 200


def test_extends_is_a_name_too(tmp_path: Path):
    (tmp_path / "child.yaml").write_text(PERSONA + "extends: ../secret\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"child.yaml: extends: bad persona name '../secret'"):
        load_persona("child", tmp_path)


def test_a_long_extends_chain_is_refused(tmp_path: Path):
    for i in range(100):
        (tmp_path / f"p{i}.yaml").write_text(PERSONA + f"extends: p{i + 1}\n", encoding="utf-8")
    (tmp_path / "p100.yaml").write_text(PERSONA, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"p7.yaml: extends: more than 8 persona files extend each other"):
        load_persona("p0", tmp_path)
    assert time.monotonic() - started < 2.0
    assert load_persona("p93", tmp_path).name == "P"  # 8 files: fine


@pytest.mark.parametrize("where", ["description: *a8\n", "style:\n  words: *a8\n"])
def test_an_alias_bomb_in_a_persona_is_one_line(tmp_path: Path, where: str):
    (tmp_path / "bomb.yaml").write_text(PERSONA + laughs() + where, encoding="utf-8")
    error, took = timed_error(tmp_path / "bomb.yaml", lambda p: load_persona("bomb", tmp_path))
    assert "expands to more than 100000 values" in error and took < 2.0


def test_an_oversized_reference_clip_is_refused(tmp_path: Path):
    clip = tmp_path / "big.wav"
    with clip.open("wb") as f:
        f.truncate(80 * 1024 * 1024)
    (tmp_path / "p.yaml").write_text(PERSONA + "voice:\n  match: big.wav\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"voice.match: the clip is 80 MB; reference clips are limited to 50 MB"):
        load_persona("p", tmp_path)


def test_config_show_redacts_the_token(tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("control:\n  token: s3cret-token-0123456789\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "config", "show", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout and "token: <redacted>" in proc.stdout
