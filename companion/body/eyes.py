"""The LED eyes: one brightness (and colour) per moment, from the robot's state.

idle      slow breathing          listening  steady
thinking  quick pulse             speaking   follows the loudness of the voice
error     blinking                muted      dim and steady (while idle or listening)

:meth:`Eyes.render` is called with the body clock's time, once per frame, by the
body thread; it is a pure function of the state, the time and the audio envelope,
so tests step it with a fake clock.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from companion.body.settings import EyeSettings
from companion.messages import Float32Array, State
from companion.persona import LedColours

Rgb = tuple[float, float, float]
_log = logging.getLogger(__name__)

IDLE_PERIOD_S = 4.0
IDLE_LEVELS = (0.05, 0.4)
THINKING_PERIOD_S = 1.0
THINKING_LEVELS = (0.2, 1.0)
ERROR_PERIOD_S = 1.0
SPEAKING_FLOOR = 0.1
"""Brightness of silence while speaking (between words the eyes stay lit)."""
WINDOW_S = 0.025
"""Loudness window: RMS over 25 ms of audio."""


def parse_colour(text: str) -> Rgb:
    """``#rrggbb`` or ``#rgb`` to floats in [0, 1]."""
    digits = text.strip().removeprefix("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) != 6:
        raise ValueError(f"not a #rrggbb colour: {text!r}")
    value = int(digits, 16)
    return ((value >> 16 & 0xFF) / 255.0, (value >> 8 & 0xFF) / 255.0, (value & 0xFF) / 255.0)


def _wave(t: float, period: float, lo: float, hi: float) -> float:
    """A smooth raised-cosine wave: ``lo`` at t=0, ``hi`` half a period later."""
    return lo + (hi - lo) * (1.0 - math.cos(2.0 * math.pi * t / period)) / 2.0


def loudness_level(rms: float, quiet_db: float, loud_db: float) -> float:
    """Brightness for a window's RMS: linear in dBFS from ``quiet_db`` to ``loud_db``."""
    if rms <= 0:
        return SPEAKING_FLOOR
    db = 20.0 * math.log10(rms)
    x = min(1.0, max(0.0, (db - quiet_db) / (loud_db - quiet_db)))
    return SPEAKING_FLOOR + (1.0 - SPEAKING_FLOOR) * x


def rms_windows(samples: Float32Array, rate: int, window_s: float = WINDOW_S) -> tuple[np.ndarray, float]:
    """RMS of consecutive windows (the last one zero-padded) and the window length in seconds."""
    n = max(1, round(rate * window_s))
    x = np.asarray(samples, dtype=np.float32)
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32), n / rate
    pad = (-len(x)) % n
    if pad:
        x = np.concatenate([x, np.zeros(pad, dtype=np.float32)])
    frames = x.reshape(-1, n).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1)), n / rate


@dataclass(frozen=True)
class _Segment:
    start: float
    window_s: float
    rms: np.ndarray

    @property
    def end(self) -> float:
        return self.start + self.window_s * len(self.rms)


class Envelope:
    """Loudness of the audio being played, placed on the body clock."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._segments: deque[_Segment] = deque()
        self._lock = threading.Lock()

    def add(self, samples: Float32Array, rate: int, heard_at: float) -> None:
        """Audio whose first sample is heard at ``heard_at`` (body clock)."""
        rms, window = rms_windows(samples, rate, self.window_s)
        if len(rms):
            with self._lock:
                self._segments.append(_Segment(heard_at, window, rms))

    def rms_at(self, now: float) -> float | None:
        """RMS of the audio heard at ``now``; None when nothing is playing."""
        with self._lock:
            while self._segments and self._segments[0].end <= now:
                self._segments.popleft()
            for seg in self._segments:
                if seg.start <= now < seg.end:
                    return float(seg.rms[int((now - seg.start) / seg.window_s)])
        return None

    def clear(self) -> None:
        with self._lock:
            self._segments.clear()


class Eyes:
    """Decides the eye brightness and colour, and writes it to a gpiozero LED device.

    ``device`` is a gpiozero ``PWMLED`` (single) or ``RGBLED`` (rgb); its polarity is
    set when it is made. None renders without output (used by tests of the levels).
    """

    def __init__(self, device: Any, settings: EyeSettings, colours: LedColours | None = None) -> None:
        self._device = device
        self._settings = settings
        self._rgb = device is not None and settings.kind == "rgb"
        self._colours: dict[State, Rgb] = {}
        self.set_colours(colours or LedColours())
        self.envelope = Envelope()
        self.muted: Callable[[], bool] = lambda: False
        self._state = State.IDLE
        self._since = 0.0
        self._last: Any = None

    def set_colours(self, colours: LedColours) -> None:
        """Use a persona's colours; a colour that does not parse keeps the old one."""
        for state in State:
            text = getattr(colours, state.value)
            try:
                self._colours[state] = parse_colour(text)
            except ValueError:
                _log.warning("leds.%s: not a #rrggbb colour: %r; keeping the previous one", state.value, text)
                self._colours.setdefault(state, parse_colour(getattr(LedColours(), state.value)))

    def set_state(self, state: State, now: float) -> None:
        if state != self._state:
            self._state = state
            self._since = now
            if state != State.SPEAKING:
                self.envelope.clear()

    @property
    def state(self) -> State:
        return self._state

    def level(self, now: float) -> float:
        """Brightness in [0, 1] before the brightness cap."""
        state, t = self._state, now - self._since
        if state in (State.IDLE, State.LISTENING) and self.muted():
            return self._settings.muted_level
        if state == State.IDLE:
            return _wave(t, IDLE_PERIOD_S, *IDLE_LEVELS)
        if state == State.LISTENING:
            return 1.0
        if state == State.THINKING:
            return _wave(t, THINKING_PERIOD_S, *THINKING_LEVELS)
        if state == State.SPEAKING:
            rms = self.envelope.rms_at(now)
            if rms is None:
                return SPEAKING_FLOOR
            return loudness_level(rms, self._settings.quiet_db, self._settings.loud_db)
        return 1.0 if t % ERROR_PERIOD_S < ERROR_PERIOD_S / 2 else 0.0

    def value(self, now: float) -> float | Rgb:
        """What the LED device is set to at ``now``: a brightness, or an (r, g, b) for rgb."""
        level = self.level(now) * self._settings.brightness
        if self._rgb:
            r, g, b = self._colours[self._state]
            return (r * level, g * level, b * level)
        return level

    def render(self, now: float) -> None:
        value = self.value(now)
        if self._device is not None and value != self._last:
            self._device.value = value
            self._last = value

    def off(self) -> None:
        if self._device is not None:
            self._device.off()
            self._last = None
