"""What the control API serves: a small :class:`Backend` protocol, and its request types.

The same HTTP server fronts the daemon (:class:`~companion.control.daemon_backend.DaemonBackend`)
and ``companion serve`` (:class:`~companion.control.tts_backend.TtsBackend`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

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
    def from_json(cls, data: Any) -> SayRequest:
        """Validate a decoded ``POST /say`` body; raises :class:`ApiError` (400) naming the problem."""
        if not isinstance(data, dict):
            raise ApiError(400, f"expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"text", "persona", "speed", "raw", "play"})
        if unknown:
            raise ApiError(400, f"unknown key '{unknown[0]}' (known: text, persona, speed, raw, play)")
        text = data.get("text")
        if not isinstance(text, str):
            raise ApiError(400, "'text' is required and must be a string")
        if not text.strip():
            raise ApiError(400, "'text' is empty: nothing to say")
        persona = data.get("persona")
        if persona is not None and (not isinstance(persona, str) or not persona.strip()):
            raise ApiError(400, "'persona' must be a persona name")
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
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "'name' must be a persona name")
    return name.strip()


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
