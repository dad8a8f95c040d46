"""What the control API serves: a small :class:`Backend` protocol, and its request types.

The same HTTP server fronts the daemon (:class:`~companion.control.daemon_backend.DaemonBackend`)
and ``companion serve`` (:class:`~companion.control.tts_backend.TtsBackend`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from companion import limits
from companion.settings import short

SPEED_RANGE = (0.5, 2.0)


class ApiError(Exception):
    """A request the backend refuses; ``status`` is the HTTP status, ``str()`` one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Synthesized(NamedTuple):
    wav: bytes
    """A complete 16-bit mono WAV file."""
    spoken: str
    """The text as spoken (after the persona's style transform)."""
    persona: str
    """The persona's display name."""
    changed: bool
    """True when the style transform changed the words."""


@dataclass(frozen=True)
class SayRequest:
    text: str
    persona: str | None = None
    speed: float | None = None
    raw: bool = False
    play: bool = False

    @classmethod
    def from_json(cls, data: Any, max_text_chars: int = limits.MAX_TEXT_CHARS) -> SayRequest:
        """Validate a decoded ``POST /say`` body; raises :class:`ApiError` (400, 413) naming the problem."""
        if not isinstance(data, dict):
            raise ApiError(400, f"expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"text", "persona", "speed", "raw", "play"})
        if unknown:
            raise ApiError(400, f"unknown key {short(unknown[0])} (known: text, persona, speed, raw, play)")
        text = data.get("text")
        if not isinstance(text, str):
            raise ApiError(400, "'text' is required and must be a string")
        if len(text) > max_text_chars:
            raise ApiError(
                413, f"'text' is {len(text)} characters; the limit is {max_text_chars} (control.max_text_chars)"
            )
        check_text(text, "text")
        if not text.strip():
            raise ApiError(400, "'text' is empty: nothing to say")
        persona = data.get("persona")
        if persona is not None:
            persona = check_name(persona, "persona")
        speed = data.get("speed")
        if speed is not None:
            speed = check_speed(speed)
        flags = {}
        for key in ("raw", "play"):
            value = data.get(key, False)
            if not isinstance(value, bool):
                raise ApiError(400, f"'{key}' must be true or false")
            flags[key] = value
        return cls(text, persona, speed, flags["raw"], flags["play"])


def check_speed(value: Any) -> float:
    """``value`` as a speaking rate in 0.5-2.0, or :class:`ApiError` (400)."""
    lo, hi = SPEED_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"'speed' must be a number from {lo:g} to {hi:g}")
    if not lo <= value <= hi:
        raise ApiError(400, f"'speed' must be from {lo:g} to {hi:g}, got {value:g}")
    return float(value)


def persona_name(data: Any) -> str:
    """The persona name of a ``POST /persona`` body."""
    if not isinstance(data, dict) or set(data) != {"name"}:
        raise ApiError(400, 'expected {"name": PERSONA}')
    return check_name(data["name"], "name")


def check_name(value: Any, key: str) -> str:
    """A persona name (:data:`~companion.limits.PERSONA_NAME`): never a path, so nothing outside
    the persona directories is read, and the error says nothing about the files there."""
    name = value.strip() if isinstance(value, str) else value
    if not isinstance(name, str) or not limits.PERSONA_NAME.fullmatch(name):
        raise ApiError(400, f"'{key}' must be a persona name: 1-64 letters, digits, '_' or '-'")
    return name


def check_text(text: str, key: str) -> None:
    """Text the voice can take: no NUL characters, no lone UTF-16 surrogates (400 otherwise)."""
    at = text.find("\x00")
    if at >= 0:
        raise ApiError(400, f"'{key}' has a NUL character (at {at}); send plain text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(
            400, f"'{key}' is not valid Unicode: a lone surrogate at {exc.start} ({short(text[exc.start])})"
        ) from None


def decode_json(body: bytes) -> Any:
    """A request body as JSON, nested at most :data:`~companion.limits.JSON_MAX_DEPTH` deep (400 otherwise)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"bad JSON: {exc}") from None
    except RecursionError:
        data = None
    else:
        if _depth(data) <= limits.JSON_MAX_DEPTH:
            return data
    raise ApiError(400, f"JSON nested too deeply (the limit is {limits.JSON_MAX_DEPTH} levels)")


def _depth(data: Any) -> int:
    """How deep lists and objects nest in ``data`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= limits.JSON_MAX_DEPTH:
                stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class Backend(Protocol):
    """What the control API needs from whatever runs the voice."""

    kind: str
    """'daemon' or 'serve' (shown by /health)."""

    def health(self) -> dict[str, object]:
        """Cheap liveness answer."""
        ...

    def status(self) -> dict[str, object]:
        """State, persona, uptime and the last turn's timings."""
        ...

    def synthesize(self, text: str, persona: str | None, speed: float | None, raw: bool) -> Synthesized:
        """``text`` in ``persona``'s voice (None: the current one) as a WAV file."""
        ...

    def play(self, text: str, persona: str | None, speed: float | None, raw: bool) -> dict[str, object]:
        """Speak ``text`` on the robot's speaker; returns at once with what will be said."""
        ...

    def set_persona(self, name: str) -> dict[str, object]:
        """Swap the current persona; a bad name raises ``ConfigError`` and changes nothing."""
        ...
