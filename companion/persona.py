"""Personas: who the robot is, how it talks, how it sounds, how its eyes look.

A persona is ``personas/<name>.yaml`` (shipped) or ``$XDG_CONFIG_HOME/companion/
personas/<name>.yaml`` (user; adds personas or overrides a shipped one of the same
name). ``extends: other`` starts from another persona: mappings are merged deeply,
the child's values win, lists are replaced. A file may extend its own name to build
on the persona it overrides (a user ``rocky.yaml`` with ``extends: rocky``).

Every problem is a :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from companion import limits
from companion.settings import ConfigError, build, read_yaml, setting, short, to_dict
from companion.style import StyleRules, transform
from companion.tts.voice import VoiceSettings

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "personas"

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _colour(value: Any) -> str | None:
    if _COLOUR.fullmatch(value):
        return None
    return f"expected a colour like '#ff8800', got {short(value)}"


def _text(value: Any) -> str | None:
    return None if value.strip() else "expected a non-empty string"


def _texts(value: Any) -> str | None:
    for i, item in enumerate(value):
        if not item.strip():
            return f"item {i} is empty; expected non-empty strings"
    return None


@dataclass(frozen=True)
class Example:
    """One few-shot exchange shown to the LLM before the conversation."""

    user: str = setting(check=_text)
    assistant: str = setting(check=_text, doc="plain English; the style transform adds the accent")


@dataclass(frozen=True)
class LedColours:
    """The eyes' colour per daemon state, as '#rrggbb'."""

    idle: str = setting("#203040", check=_colour)
    listening: str = setting("#00ff60", check=_colour)
    thinking: str = setting("#ffa000", check=_colour)
    speaking: str = setting("#40a0ff", check=_colour)
    error: str = setting("#ff0000", check=_colour)


@dataclass(frozen=True)
class FactLines:
    """Answers to fact questions in the character's own (plain English) words; empty = built from the facts."""

    name: str = setting("", doc="'what is your name?'")
    kind: str = setting("", doc="'what are you?' / 'are you a human?'")
    home: str = setting("", doc="'where are you from?'")
    job: str = setting("", doc="'what do you do?'")
    best_friend: str = setting("", doc="'who is your best friend?'")
    likes: str = setting("", doc="'what do you like?'")
    forget: str = setting("", doc="after 'forget me' / 'forget that'")
    unknown_user: str = setting("", doc="asked the user's name or likes before being told")


@dataclass(frozen=True)
class PersonaFacts:
    """Who the character is, as facts: they ground every reply (see :mod:`companion.memory`)."""

    kind: str = setting("", doc="what it is, e.g. 'an Eridian, an alien'")
    human: bool = setting(False, doc="whether the character is a human")
    home: str = setting("", doc="where it is from, e.g. 'the planet Erid'")
    home_words: tuple[str, ...] = setting((), check=_texts, doc="words any mention of its home contains")
    job: str = setting("", doc="what it does, e.g. 'an engineer'")
    best_friend: str = setting("", doc="its best friend, e.g. 'Grace, a human scientist'")
    friends: tuple[str, ...] = setting((), check=_texts, doc="other friends")
    likes: tuple[str, ...] = setting((), check=_texts, doc="what it likes")
    self_words: str = setting("", doc="how it talks about itself, one sentence in its words")
    lines: FactLines = field(default_factory=FactLines)


@dataclass(frozen=True)
class Persona:
    name: str = setting(check=_text, doc="display name; also a wake phrase")
    system_prompt: str = setting(check=_text, doc="who the character is, for the LLM")
    description: str = setting("", doc="one line for 'companion persona list'")
    extends: str | None = setting(None, check=_text, doc="another persona this one starts from")
    examples: tuple[Example, ...] = setting((), doc="few-shot exchanges shown to the LLM")
    greeting: str = setting("", doc="said when the daemon starts or the persona is chosen")
    farewell: str = setting("", doc="said when the daemon stops")
    fallback: str = setting("Sorry, I lost my train of thought.", check=_text, doc="said when a stage fails")
    wake_phrases: tuple[str, ...] = setting((), check=_texts, doc="besides the name")
    style: StyleRules = field(default_factory=StyleRules)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    leds: LedColours = field(default_factory=LedColours)
    facts: PersonaFacts = field(default_factory=PersonaFacts)
    path: Path | None = field(default=None, init=False, compare=False)
    """The file this persona was loaded from (None if built in code)."""

    def transform(self, sentence: str) -> str:
        """The sentence as this persona says it (see :mod:`companion.style`)."""
        return transform(self.style, sentence)

    def as_data(self) -> dict[str, Any]:
        """Plain YAML-able data, as a persona file would hold it."""
        data = to_dict(self)
        data.pop("path", None)
        return data


def transform_text(persona: Persona, text: str) -> str:
    """Split ``text`` into sentences and transform each, as the daemon would speak it."""
    from companion.script import prepare  # the one path from written to spoken words

    return prepare(persona, text).spoken_text


# ---- finding persona files ---------------------------------------------------------


def user_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "companion" / "personas"


def persona_dirs(extra: Path | None = None) -> list[Path]:
    """Directories searched for persona files, highest priority first."""
    dirs = [user_dir(), SHIPPED_DIR]
    if extra is not None:
        dirs.insert(0, Path(extra).expanduser())
    return dirs


def list_personas(extra: Path | None = None) -> dict[str, Path]:
    """Every persona name and the file that wins for it."""
    found: dict[str, Path] = {}
    for d in reversed(persona_dirs(extra)):
        if d.is_dir():
            for path in sorted(d.glob("*.yaml")):
                found[path.stem] = path
    return dict(sorted(found.items()))


def check_persona_name(name: object, source: str = "persona", key: str = "") -> str:
    """``name`` if it is a persona name (:data:`~companion.limits.PERSONA_NAME`), else a one-line ConfigError.

    A name is never a path: the error tells nothing about files outside the persona directories.
    """
    if not isinstance(name, str) or not limits.PERSONA_NAME.fullmatch(name):
        raise ConfigError(source, key, f"bad persona name {short(name)}: use 1-64 letters, digits, '_' or '-'")
    return name


def find_persona(name: str, extra: Path | None = None, *, skip: Path | None = None) -> Path:
    """The file for persona ``name``; ``skip`` finds the one it overrides instead."""
    check_persona_name(name)
    past_skip = skip is None
    for d in persona_dirs(extra):
        path = d / f"{name}.yaml"
        if skip is not None and path.resolve() == skip.resolve():
            past_skip = True
            continue
        if past_skip and path.is_file():
            return path
    known = ", ".join(list_personas(extra)) or "none"
    raise ConfigError(f"{name}.yaml", "", f"no persona named '{name}' (known: {known})")


# ---- loading -----------------------------------------------------------------------


def load_persona(name: str, extra: Path | None = None) -> Persona:
    """Load persona ``name`` from the search directories (see :func:`persona_dirs`)."""
    return load_persona_file(find_persona(name, extra), extra)


def load_persona_file(path: Path, extra: Path | None = None) -> Persona:
    """Load and check one persona file; its ``extends`` are looked up by name."""
    return _load(Path(path), extra, ())


def _load(path: Path, extra: Path | None, chain: tuple[Path, ...]) -> Persona:
    source = str(path)
    data = read_yaml(path)
    if not isinstance(data, Mapping):
        if data is None:
            raise ConfigError(source, "", "the file is empty; expected a persona mapping")
        raise ConfigError(source, "", f"expected a mapping of keys, got {type(data).__name__}")
    parent_name = data.get("extends")
    if parent_name is not None:
        if not isinstance(parent_name, str) or not parent_name.strip():
            raise ConfigError(source, "extends", f"expected a persona name, got {parent_name!r}")
        check_persona_name(parent_name, source, "extends")
        here = (*chain, path.resolve())
        if len(here) >= limits.EXTENDS_MAX_CHAIN:
            raise ConfigError(
                source, "extends", f"more than {limits.EXTENDS_MAX_CHAIN} persona files extend each other"
            )
        parent_path = _find_parent(parent_name, path, extra)
        if parent_path.resolve() in here:
            names = " -> ".join(p.stem for p in (*here, parent_path))
            raise ConfigError(source, "extends", f"persona files extend each other in a cycle: {names}")
        parent = _load(parent_path, extra, here)
        data = _merge(parent.as_data(), data)
    persona = _resolve_clips(build(Persona, data, source=source), path)
    object.__setattr__(persona, "path", path)
    return persona


def _find_parent(name: str, path: Path, extra: Path | None) -> Path:
    if name == path.stem:  # extend the persona this file overrides
        try:
            return find_persona(name, extra, skip=path)
        except ConfigError:
            raise ConfigError(
                str(path), "extends", f"'{name}' is this file's own name and no other '{name}' exists"
            ) from None
    sibling = path.parent / f"{name}.yaml"
    if sibling.is_file():
        return sibling
    try:
        return find_persona(name, extra)
    except ConfigError as exc:
        raise ConfigError(str(path), "extends", exc.problem) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge, the child's other values (lists too) replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_clips(persona: Persona, path: Path) -> Persona:
    """Relative clips are relative to the persona file's directory; each must exist."""
    voice = persona.voice.resolved(path.parent.resolve())
    clips = [(f"voice.reference[{i}]", clip) for i, clip in enumerate(voice.reference)]
    if voice.match is not None:
        clips.append(("voice.match", voice.match))
    for key, clip in clips:
        if not clip.is_file():
            raise ConfigError(str(path), key, f"reference clip not found: {clip}")
        size = clip.stat().st_size
        if size > limits.CLIP_MAX_BYTES:
            mb, limit = size / 2**20, limits.CLIP_MAX_BYTES // 2**20
            raise ConfigError(str(path), key, f"the clip is {mb:.0f} MB; reference clips are limited to {limit} MB")
    return dataclasses.replace(persona, voice=voice)
