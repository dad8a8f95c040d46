"""The background level of the microphone, tracked frame by frame.

webrtcvad answers "is this frame speech-like?", not "is it louder than the room?". A fan
or a TV that starts suddenly, or a room tone unlike the one it was tuned on, then reads
as a long run of speech. :class:`NoiseFloor` follows the room's level so the turn
detector can also ask that a voiced frame stand ``margin`` dB above the background.

Two estimates, the larger wins:

- the minimum frame level over the last ``window_s``: speech always has dips (stops,
  gaps between words) within that window, so speech never raises it, while a new
  steady noise does once it has lasted the whole window;
- the minimum over the last ``steady_s`` when that stretch is *steady* (level spread
  under ``steady_db``): a fan or hum is steady within a fraction of a second, speech
  hardly ever is, so a sudden noise is learnt in ``steady_s`` rather than ``window_s``
  (and the quieter past before it is forgotten).

A fall in background (the fan stops) is followed at once.
"""

from __future__ import annotations

import collections

import numpy as np

from companion.messages import Int16Array

SILENT_DB = -100.0
"""The level given to digital silence (all-zero frames)."""


def frame_db(frame: Int16Array) -> float:
    """Level of one frame in dB full scale (mean removed; -100 for digital silence)."""
    x = frame.astype(np.float64) / 32768.0
    x -= x.mean()
    power = float(np.mean(x * x))
    return max(SILENT_DB, 10.0 * np.log10(power)) if power > 0 else SILENT_DB


class NoiseFloor:
    """Feed it each frame's level; :attr:`db` is the background level in dBFS."""

    def __init__(self, frame_ms: int, *, window_s: float = 2.0, steady_s: float = 1.2, steady_db: float = 2.5) -> None:
        if frame_ms <= 0 or window_s <= 0 or not 0 < steady_s <= window_s:
            raise ValueError(f"noise floor: bad frame_ms={frame_ms}, window_s={window_s}, steady_s={steady_s}")
        self._window = max(2, round(window_s * 1000 / frame_ms))
        self._raw: collections.deque[float] = collections.deque(maxlen=self._window)
        self._smooth: collections.deque[float] = collections.deque(maxlen=3)
        self._steady: collections.deque[float] = collections.deque(maxlen=max(2, round(steady_s * 1000 / frame_ms)))
        self._steady_db = steady_db
        self._warmup = max(1, self._window // 4)
        self._heard = 0
        self.db = SILENT_DB
        """The current background estimate (dBFS); :data:`SILENT_DB` until a quarter of
        ``window_s`` has been heard (a stream that starts with speech is not taken for
        a loud room)."""

    def reset(self) -> None:
        self._raw.clear()
        self._smooth.clear()
        self._steady.clear()
        self._heard = 0
        self.db = SILENT_DB

    def update(self, db: float) -> float:
        """Take one frame's level (from :func:`frame_db`); return the new floor."""
        self._heard += 1
        self._smooth.append(10 ** (db / 10))
        level = 10 * float(np.log10(max(sum(self._smooth) / len(self._smooth), 1e-10)))
        self._raw.append(level)
        self._steady.append(level)
        floor = min(self._raw)
        if len(self._steady) == self._steady.maxlen:
            quiet, loud = min(self._steady), max(self._steady)
            if loud - quiet < self._steady_db and quiet > floor + self._steady_db:
                # a new steady background: what came before it no longer describes the room
                recent = list(self._raw)[-len(self._steady) :]
                self._raw = collections.deque(recent, maxlen=self._window)
                floor = min(recent)
        self.db = floor if self._heard >= self._warmup else SILENT_DB
        return self.db
