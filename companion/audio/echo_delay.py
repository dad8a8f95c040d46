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
        near_s: float = 0.05,
        far_agree: int = 4,
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
        self._agreed = 0  # estimates in a row that agree with the candidate
        self.near_s = near_s
        self.far_agree = far_agree
        """Estimates in a row needed to move a known delay by more than ``near_s``: an underrun
        moves the echo by tens of milliseconds, while a peak far away is more often a
        chance match (the user talking as the robot fell silent) that two overlapping
        windows share."""
        self.still_ratio = 0.25
        """The bench room, replayed offline: 660 windows just after a real move of 5-20 ms kept at most
        0.15 of the peak where the echo had been; a voice over the echo that won the peak elsewhere
        left 0.01-0.97 there (median 0.08): this stops the follows that leave a clear trace behind."""

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
        to ``-min_delay_s`` after its end (see :meth:`span`). Returns the delay once two estimates
        in a row agree on it (``far_agree`` when it is far from the delay known so far)."""
        self._since = 0
        found = self.peak(np.concatenate([b for _, b in self._blocks]), reference, still_at=self.delay_s)
        if found is None:
            return self.delay_s
        delay = found[0]
        if self._candidate is not None and abs(delay - self._candidate) < 0.005:
            self._agreed += 1
        else:
            self._agreed = 1
        self._candidate = delay
        near = self.delay_s is not None and abs(delay - self.delay_s) <= self.near_s
        if self._agreed >= (2 if self.delay_s is None or near else self.far_agree):
            if self.delay_s is None or abs(delay - self.delay_s) > 0.005:
                _log.info("echo arrives %.0f ms after the speaker plays it", delay * 1000)
            self.delay_s = delay
        return self.delay_s

    def peak(
        self,
        mic: Int16Array,
        reference: np.ndarray,
        *,
        sharpness: float = 8.0,
        lags_s: tuple[float, float] | None = None,
        still_at: float | None = None,
    ) -> tuple[float, float] | None:
        """Where ``mic`` echoes ``reference`` (which starts ``max_delay_s`` before ``mic`` and runs
        ``-min_delay_s`` past its end; or ``lags_s`` = (min, max) delay instead): (delay, how far
        the peak stands above the rest), or None without a peak of ``sharpness`` (no echo, or
        another voice louder than it). One GCC-PHAT, which gives a sharp peak for speech.

        ``still_at``: the delay known so far. If the correlation there is still at least
        ``still_ratio`` of the peak's, the echo has not moved (None): what won is a reflection of
        the room, or a voice over the echo. On a bench whose echo holds still, a person talking
        over the robot at 0 dB made peaks 3.6, 13 and 20 ms off the echo, and following them cost
        the filter what it had learnt; after a real move the old place is empty."""
        low, high = lags_s if lags_s is not None else (self.min_delay_s, self.max_delay_s)
        m = np.asarray(mic, dtype=np.float64)
        ref = np.asarray(reference, dtype=np.float64)
        if np.sqrt(np.mean(ref**2)) < 100 or np.sqrt(np.mean(m**2)) < 30:
            return None  # not enough sound to tell
        size = 1 << (len(ref) + len(m)).bit_length()
        cross = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(m, size))
        corr = np.fft.irfft(cross / (np.abs(cross) + 1e-9), size)
        lags = int(high * self.rate)
        window = np.abs(corr[: lags - int(low * self.rate) + 1])
        best = int(np.argmax(window))
        sharp = window[best] / (np.median(window) + 1e-12)
        edge = int(0.005 * self.rate)
        if sharp < sharpness or best < edge or best > len(window) - 1 - edge:  # a peak at the edge is out of range
            return None
        if still_at is not None:
            at = lags - round(still_at * self.rate)
            if 0 <= at < len(window) and window[max(at - 2, 0) : at + 3].max() >= self.still_ratio * window[best]:
                return None
        return (lags - best) / self.rate, float(sharp)  # mic[n] echoes ref[n + lags - delay]

    def assume(self, delay: float) -> None:
        """Take ``delay`` as known (measured elsewhere, just after it moved): the window starts
        anew, so what was heard before the move does not pull the estimate back."""
        self.delay_s = self._candidate = delay
        self._agreed = 1
        self._blocks.clear()
        self._held = self._since = 0

    def hurry(self) -> None:
        """Estimate again at the next block (the timing changed under us)."""
        self._since = self.every

    def span(self) -> tuple[float, int]:
        """(start time, samples) of the reference that :meth:`estimate` needs."""
        start = self._blocks[0][0] - self.max_delay_s
        return start, int((self.max_delay_s - self.min_delay_s) * self.rate) + self._held


def echo_share(heard: Int16Array, played: Int16Array, rate: int, *, segment_s: float = 0.064) -> float:
    """How much of ``heard`` (0-1, by energy, 150-4000 Hz) is a linear echo of ``played``, read
    aligned with it: their magnitude-squared coherence (Welch, Hann, half overlap), weighted by
    ``heard``'s own spectrum. A sharp GCC-PHAT peak says the echo is there; this says how much of
    what is heard it is. The robot's voice alone through the bench room (RT60 0.25 s): 0.70-0.92,
    live and offline; with a person talking over it as loud as its echo, about 0.45."""
    n = int(segment_s * rate)
    x = np.asarray(heard, dtype=np.float64)
    y = np.asarray(played, dtype=np.float64)[: len(x)]
    if len(y) < n:
        return 0.0
    window = np.hanning(n)
    starts = range(0, len(y) - n + 1, n // 2)
    xs = np.fft.rfft(np.stack([x[i : i + n] for i in starts]) * window, axis=1)
    ys = np.fft.rfft(np.stack([y[i : i + n] for i in starts]) * window, axis=1)
    sxy = np.abs(np.sum(xs * np.conj(ys), axis=0)) ** 2
    sxx = np.sum(np.abs(xs) ** 2, axis=0)
    syy = np.sum(np.abs(ys) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    band = (freqs >= 150) & (freqs <= 4000)
    coherence = sxy[band] / (sxx[band] * syy[band] + 1e-9)
    return float(np.sum(coherence * sxx[band]) / (np.sum(sxx[band]) + 1e-9))
