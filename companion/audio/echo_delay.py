"""Finding how late the speaker's echo reaches the microphone.

Sound servers, USB adapters and the room add a delay between the moment the speaker
is told a sample is heard and the moment the microphone captures its echo; on a
PulseAudio machine here it was over 300 ms, longer than the echo filter. The
estimator keeps the last seconds of microphone audio and, while the speaker plays,
cross-correlates it with what was played (GCC-PHAT, which gives a sharp peak for
speech), so the echo canceller can read its reference that much earlier.
"""

from __future__ import annotations

import collections
import logging

import numpy as np

from companion.messages import Int16Array

_log = logging.getLogger(__name__)


class DelayEstimator:
    def __init__(
        self,
        rate: int = 16000,
        *,
        window_s: float = 2.0,
        max_delay_s: float = 1.5,
        min_delay_s: float = -0.5,
        every_s: float = 1.0,
    ) -> None:
        self.rate = rate
        self.window = int(window_s * rate)
        self.max_delay_s = max_delay_s
        self.min_delay_s = min_delay_s
        """Below 0: the clocks may say the echo came before the sound (a sink that misreports its delay)."""
        self.every = int(every_s * rate)
        self._blocks: collections.deque[tuple[float, Int16Array]] = collections.deque()
        self._held = 0
        self._since = 0
        self.delay_s: float | None = None
        """The last confident estimate (seconds from 'heard' to captured)."""
        self._candidate: float | None = None

    def add(self, captured_at: float, samples: Int16Array) -> None:
        self._blocks.append((captured_at, samples))
        self._held += len(samples)
        self._since += len(samples)
        while self._held - len(self._blocks[0][1]) >= self.window:
            self._held -= len(self._blocks.popleft()[1])

    def due(self) -> bool:
        return self._since >= self.every and self._held >= self.window

    def estimate(self, reference: np.ndarray) -> float | None:
        """Update from ``reference``: what was heard from ``max_delay_s`` before the window's start
        to ``-min_delay_s`` after its end (see :meth:`span`). Returns the delay when two estimates
        in a row agree."""
        self._since = 0
        mic = np.concatenate([b for _, b in self._blocks]).astype(np.float64)
        ref = reference.astype(np.float64)
        if np.sqrt(np.mean(ref**2)) < 100 or np.sqrt(np.mean(mic**2)) < 30:
            return self.delay_s  # not enough sound to tell
        size = 1 << (len(ref) + len(mic)).bit_length()
        cross = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(mic, size))
        corr = np.fft.irfft(cross / (np.abs(cross) + 1e-9), size)
        lags = int(self.max_delay_s * self.rate)
        window = np.abs(corr[: lags - int(self.min_delay_s * self.rate) + 1])
        best = int(np.argmax(window))
        sharp = window[best] / (np.median(window) + 1e-12)
        edge = int(0.005 * self.rate)
        if sharp < 8.0 or best < edge or best > len(window) - 1 - edge:  # a peak at the edge is out of range
            return self.delay_s
        delay = (lags - best) / self.rate  # mic[n] echoes ref[n + lags - delay]
        if self._candidate is not None and abs(delay - self._candidate) < 0.005:
            if self.delay_s is None or abs(delay - self.delay_s) > 0.005:
                _log.info("echo arrives %.0f ms after the speaker plays it", delay * 1000)
            self.delay_s = delay
        self._candidate = delay
        return self.delay_s

    def span(self) -> tuple[float, int]:
        """(start time, samples) of the reference that :meth:`estimate` needs."""
        start = self._blocks[0][0] - self.max_delay_s
        return start, int((self.max_delay_s - self.min_delay_s) * self.rate) + self._held
