"""The speaker amplifier's enable pin, and a speaker wrapper that drives it.

A class-D amp like the MAX98357A hisses faintly and pops when it wakes. We keep it
in shutdown while the robot is quiet, wake it a little before the first sample of a
reply, and shut it down again once the reply has played and a short idle time has
passed (so back-to-back replies do not pop between sentences).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from companion.body.settings import AmpSettings
from companion.messages import SpokenAudio
from companion.stages import AudioSink, Clock

_log = logging.getLogger(__name__)

Sleep = Callable[[float], None]


class Amp:
    """Timing of the amp's enable pin: on with a warm-up, off after an idle time.

    ``device`` is a gpiozero output (``DigitalOutputDevice``; its ``active_high``
    already encodes the polarity). :meth:`poll` must be called regularly (the
    :class:`~companion.body.Body` thread does it) to switch the amp off when idle.
    """

    def __init__(self, device: Any, settings: AmpSettings, clock: Clock = time.monotonic) -> None:
        self._device = device
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._on_since: float | None = None
        self._off_at: float | None = None
        device.off()

    @property
    def is_on(self) -> bool:
        return self._on_since is not None

    def acquire(self) -> float:
        """Keep the amp on (switching it on if needed); return seconds until it is warm."""
        with self._lock:
            now = self._clock()
            self._off_at = None
            if self._on_since is None:
                self._device.on()
                self._on_since = now
                _log.debug("amp on")
            return max(0.0, self._on_since + self._settings.warmup_ms / 1000.0 - now)

    def release(self) -> None:
        """Nothing more to play for now: switch off after the idle time."""
        with self._lock:
            if self._on_since is None:
                return
            if self._settings.idle_off_s <= 0:
                self._switch_off()
            else:
                self._off_at = self._clock() + self._settings.idle_off_s

    def poll(self, now: float | None = None) -> None:
        """Switch the amp off if its idle time has run out."""
        with self._lock:
            if self._off_at is not None and (self._clock() if now is None else now) >= self._off_at:
                self._switch_off()

    def off(self) -> None:
        """Switch off now."""
        with self._lock:
            self._switch_off()

    def _switch_off(self) -> None:
        self._off_at = None
        if self._on_since is not None:
            _log.debug("amp off")
        self._on_since = None
        self._device.off()


class AmpSink:
    """An :class:`~companion.stages.AudioSink` that wakes the amp before playing.

    The amp goes on at :meth:`begin` (so its warm-up overlaps synthesis of the
    first sentence); the first :meth:`write` waits, with the injected ``sleep``,
    until the warm-up has passed. After :meth:`end` the amp stays on for the idle
    time; :meth:`close` always leaves it off.
    """

    def __init__(self, inner: AudioSink, amp: Amp, sleep: Sleep = time.sleep) -> None:
        self.inner = inner
        self.amp = amp
        self._sleep = sleep

    def begin(self, turn: int) -> None:
        self.amp.acquire()
        self.inner.begin(turn)

    def write(self, audio: SpokenAudio) -> float:
        wait = self.amp.acquire()
        if wait > 0:
            self._sleep(wait)
        return self.inner.write(audio)

    def end(self, turn: int) -> str:
        try:
            return self.inner.end(turn)
        finally:
            self.amp.release()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.amp.off()
