"""The microphone side of echo cancellation: align, cancel, gate."""

from __future__ import annotations

import logging

import numpy as np

from companion.audio.echo import EchoReference, EchoStats, SpeexEchoCanceller
from companion.audio.echo_delay import DelayEstimator
from companion.messages import Int16Array

_log = logging.getLogger(__name__)


class EchoPath:
    """The microphone side: each captured block, with the speaker's echo taken out.

    After the adaptive filter, a block gate (the "non-linear processor" of echo
    cancellers) silences blocks that are only echo, since a voice detector still hears
    speech in echo 30 dB down. While the speaker plays, a block passes only if the
    filter took out less than ``gate_db`` of it and what is left is louder than
    ``floor_dbfs`` (someone else is talking), and only once the filter has learnt the
    room (``trained_db`` of echo removed): until then the robot is half-duplex.
    """

    def __init__(
        self,
        canceller: SpeexEchoCanceller,
        reference: EchoReference,
        *,
        lead_ms: float = 60.0,
        gate_db: float = 10.0,
        trained_db: float = 12.0,
        tail_s: float = 0.3,
        floor_dbfs: float = -40.0,
    ) -> None:
        self.canceller = canceller
        self.reference = reference
        self.lead_s = lead_ms / 1000.0
        self.gate = 10.0 ** (gate_db / 10.0)
        self.trained_ratio = 10.0 ** (trained_db / 10.0)
        self.tail_s = tail_s
        self.floor = 32768.0**2 * 10.0 ** (floor_dbfs / 10.0)  # per-sample energy of a block at that level
        self.trained = False
        self._in = self._out = 0.0  # smoothed energies of far-end blocks
        self._far_blocks = 0
        self.gated_blocks = 0
        self.delay = DelayEstimator(reference.rate)
        self.shift_s = 0.0
        """How far back the reference is read: the measured echo delay less ``lead_ms``. It moves
        only when the echo drifts out of the filter, so the filter need not learn the room again."""
        self.delay_known = False
        self.filter_s = canceller.tail_s

    def _track_delay(self, samples: Int16Array, captured_at: float) -> None:
        self.delay.add(captured_at, samples)
        if not self.delay.due():
            return
        start, n = self.delay.span()
        delay = self.delay.estimate(self.reference.read(start, n))
        if delay is None:
            return
        inside = delay - self.shift_s  # where the echo now sits in the filter
        if not self.delay_known or not min(self.lead_s / 3, 0.01) <= inside <= self.filter_s - 0.05:
            self.delay_known = True
            lead = min(self.lead_s, delay) if delay > 0.01 else 0.01  # the reference must not be late
            self.shift_s = delay - lead
            self.canceller.reset()  # the filter learnt the old alignment
            self.trained = False
            self._far_blocks = 0

    def clean(self, samples: Int16Array, captured_at: float | None) -> Int16Array:
        if captured_at is None:
            return samples
        if self.reference.sounding(captured_at + 0.5, 2.0):
            self._track_delay(samples, captured_at)
        heard_at = captured_at - self.shift_s
        ref = self.reference.read(heard_at, len(samples))
        out = self.canceller.process(samples, ref)
        if not self.delay_known:  # until the delay is known, any sound nearby may be echo
            echo_possible = self.reference.sounding(captured_at + 0.6, 2.0)
        else:
            echo_possible = self.reference.sounding(heard_at, self.tail_s)
        if not echo_possible:
            return out
        e_in = float(np.dot(samples.astype(np.float64), samples)) + 1.0
        e_out = float(np.dot(out.astype(np.float64), out)) + 1.0
        self._in += 0.05 * (e_in - self._in)
        self._out += 0.05 * (e_out - self._out)
        self._far_blocks += 1
        if not self.trained and self._far_blocks > 40 and self._in > self.trained_ratio * self._out:
            self.trained = True
            _log.info("echo canceller has learnt the room (%.0f dB removed)", 10 * np.log10(self._in / self._out))
        if self.trained and e_in < self.gate * e_out and e_out > self.floor * len(out):
            return out  # more than echo: the user is speaking
        self.gated_blocks += 1
        return np.zeros_like(out)

    @property
    def stats(self) -> EchoStats:
        return self.canceller.stats
