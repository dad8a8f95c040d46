"""Hypothesis-driven persona and config files: each loads, or is one line of error, fast and small.

Files are generated three ways: YAML dumped from random data shaped like the real
files (right keys, wrong values), the shipped files with bytes changed, and
snippets of hostile YAML (aliases, anchors, tags, deep nesting) put together.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fuzzkit import Meter, one_line
from hypothesis import given
from hypothesis import strategies as st

from companion.config import REPO_CONFIG, Config
from companion.persona import SHIPPED_DIR, Persona, load_persona_file
from companion.settings import ConfigError, build, read_yaml

PERSONA_KEYS = ["name", "system_prompt", "description", "extends", "examples", "greeting", "farewell", "fallback",
                "wake_phrases", "style", "voice", "leds", "facts"]  # fmt: skip
STYLE_KEYS = ["phrases", "contractions", "words", "emphasis", "drop_articles", "drop_auxiliaries", "question_suffix",
              "capitalize", "fillers"]  # fmt: skip
CONFIG_KEYS = ["persona", "personas_dir", "log_level", "audio", "vad", "listen", "stt", "llm", "tts", "control"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=30),
    st.sampled_from(["rocky", "../rocky", "/etc/passwd", "#ff00ff", "piper", "x" * 500, "", " ", "~", "null"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
regex_parts = st.sampled_from(
    ["a", "b", "(", ")", "+", "*", "?", "|", "^", "$", "\\b", "\\w", "\\s", ".", "{2,5}", "{100}", "[ab]", "(?:", "\\1",
     "(?P<n>", "(?=", "(?!", "(?<=x)", "\\", "[", "]", "{", "}", "(?i)", "\\d+", ".*"]
)  # fmt: skip
regexes = st.lists(regex_parts, min_size=1, max_size=12).map("".join)
phrases = st.lists(
    st.fixed_dictionaries({"regex": regexes}, optional={"replace": st.sampled_from(["", "x", "\\1", "\\g<n>", "\\q"])}),
    max_size=3,
)
styles = st.fixed_dictionaries({}, optional={k: values for k in STYLE_KEYS}) | st.fixed_dictionaries(
    {"phrases": phrases}
)
personas = st.fixed_dictionaries(
    {"name": scalars, "system_prompt": scalars},
    optional={**{k: values for k in PERSONA_KEYS[2:]}, "style": styles, "extra": values},
)
configs = st.fixed_dictionaries({}, optional={k: values for k in CONFIG_KEYS}) | st.dictionaries(
    st.sampled_from(CONFIG_KEYS), st.dictionaries(st.text(max_size=12), values, max_size=4), max_size=3
)
HOSTILE = [
    "&a [1, 2]", "*a", "*undefined", "!!python/object:os.system ls", "!!binary AAAA", "!!timestamp 2001-12-14",
    "!!set {a, b}", "<<: *a", "? [a, b]\n: c", "[" * 60 + "]" * 60, "{" * 40 + "}" * 40, "'unterminated", "\t",
    "%YAML 1.1\n---", "--- a\n--- b", "\x00", "\ufeff", "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
    "x: " + "y" * 1000, "- - - - - - - - - - -", "&a [*a]",
]  # fmt: skip
hostile_texts = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=20), min_size=1, max_size=6).map(
    lambda parts: "\n".join(f"k{i}: {p}" if i % 2 else p for i, p in enumerate(parts))
)


def mutate(original: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(original)
    for at, byte in edits:
        data[at % len(data)] = byte
    return bytes(data)


def dump(data: object) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, UnicodeError):
        return repr(data)


def check_persona(path: Path, meter: Meter, what: object) -> None:
    with meter.measure(what):
        try:
            persona = load_persona_file(path, path.parent)
        except ConfigError as exc:
            one_line(str(exc))
            return
    assert isinstance(persona, Persona)
    with meter.measure(("transform", what)):
        persona.transform("Hello there, can you explain what you are doing today? " * 3)


def check_config(path: Path, meter: Meter, what: object) -> None:
    with meter.measure(what):
        try:
            config = build(Config, read_yaml(path), source=str(path))
        except ConfigError as exc:
            one_line(str(exc))
            return
    assert isinstance(config, Config)


@pytest.fixture()
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-settings")


@given(data=personas)
def test_persona_files_shaped_like_the_real_ones(workdir: Path, meter: Meter, data: dict[str, object]):
    path = workdir / "p.yaml"
    path.write_text(dump(data), encoding="utf-8")
    check_persona(path, meter, data)


@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_shipped_personas_with_bytes_changed(workdir: Path, meter: Meter, edits: list[tuple[int, int]]):
    original = (SHIPPED_DIR / "rocky.yaml").read_bytes()
    path = workdir / "rocky.yaml"
    path.write_bytes(mutate(original, edits))
    check_persona(path, meter, edits)


@given(text=hostile_texts)
def test_hostile_yaml_as_a_persona_and_as_a_config(workdir: Path, meter: Meter, text: str):
    path = workdir / "h.yaml"
    path.write_text(text, encoding="utf-8")
    check_persona(path, meter, text)
    check_config(path, meter, text)


@given(data=configs)
def test_config_files_shaped_like_the_real_one(workdir: Path, meter: Meter, data: dict[str, object]):
    path = workdir / "c.yaml"
    path.write_text(dump(data), encoding="utf-8")
    check_config(path, meter, data)


@given(edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_the_shipped_config_with_bytes_changed(workdir: Path, meter: Meter, edits: list[tuple[int, int]]):
    path = workdir / "config.yaml"
    path.write_bytes(mutate(REPO_CONFIG.read_bytes(), edits))
    check_config(path, meter, edits)
