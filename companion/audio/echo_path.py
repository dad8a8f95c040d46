"""The microphone side of echo cancellation: align, cancel, gate."""

from __future__ import annotations

import collections
import logging

import numpy as np

from companion.audio.echo import EchoReference, EchoStats, SpeexEchoCanceller
from companion.audio.echo_delay import DelayEstimator, echo_share
from companion.messages import Int16Array

_log = logging.getLogger(__name__)


class EchoPath:
    """The microphone side: each captured block, with the speaker's echo taken out.

    After the adaptive filter, a block gate (the "non-linear processor" of echo
    cancellers) silences blocks that are only echo, since a voice detector still hears
    speech in echo 30 dB down. While the speaker plays, a block passes only if the
    filter took out less than ``gate_db`` of it and what is left is louder than
    ``floor_dbfs`` (someone else is talking; see ``double_talk_db`` for a filter that removes
    far more than ``gate_db``), and only once the filter has learnt the
    room (``trained_db`` of echo removed): until then the robot is half-duplex. Trust
    needs a margin over ``gate_db``: a filter averaging 12 dB leaves many blocks under
    10 dB, and a false barge-in came right after it was first trusted at 12 dB.
    """

    def __init__(
        self,
        canceller: SpeexEchoCanceller,
        reference: EchoReference,
        *,
        lead_ms: float = 60.0,
        gate_db: float = 10.0,
        trained_db: float = 18.0,
        retrust_db: float = 12.0,
        tail_s: float = 0.3,
        floor_dbfs: float = -40.0,
        check_s: float = 0.6,
        agree_ms: float = 3.0,
        moved_ms: float = 10.0,
        leak_sharpness: float = 25.0,
        voice_share: float = 0.5,
        double_talk_db: float = 6.0,
    ) -> None:
        self.canceller = canceller
        self.reference = reference
        self.lead_s = lead_ms / 1000.0
        self.gate = 10.0 ** (gate_db / 10.0)
        self.double_talk = 10.0 ** (double_talk_db / 10.0)
        """A trusted filter that removes ``double_talk_db`` less of a block than it has lately
        removed of the echo alone heard someone else too: the block passes even above ``gate_db``
        (offline, 10 voices over the robot: onset to barge-in p95 543 -> 475 ms at -6 dB,
        472 -> 316 ms at 0 dB; no echo-only block more got through)."""
        self.trained_ratio = 10.0 ** (trained_db / 10.0)
        self.retrust_ratio = 10.0 ** (retrust_db / 10.0)
        """After the reference has followed a jump the filter keeps what it learnt: less proof."""
        self._trust_ratio = self.trained_ratio
        self.tail_s = tail_s
        self.floor = 32768.0**2 * 10.0 ** (floor_dbfs / 10.0)  # per-sample energy of a block at that level
        self.trained = False
        self._in = self._out = 0.0  # smoothed energies of far-end blocks
        self._far_blocks = 0
        self.gated_blocks = 0
        self.delay = DelayEstimator(reference.rate)
        self.shift_s = 0.0
        """How far back the reference is read: the measured echo delay less ``lead_ms``. It moves
        only when the echo moves out of the filter's reach (the filter is then reset)."""
        self.delay_known = False
        self.aligned_for = 0.0
        """The echo delay measured last (seconds from heard to captured)."""
        self.filter_s = canceller.tail_s
        self.agree_s = agree_ms / 1000.0
        """A measured delay this close to the last one is the same (the finder's own jitter)."""
        self.moved_s = moved_ms / 1000.0
        """Before a barge-in: an echo this far off the measured delay is a move the finder has not
        confirmed yet (smaller ones are within the live delay's jitter)."""
        self.far_s = 0.5
        """...and one further off than this is not followed from here (underruns move it tens of ms)."""
        self.moved_sharpness = 40.0
        """...and the raw microphone's peak must be this sharp to say the echo moved (moves the bench
        saw: 250-280; a person talking over the end of a reply once gave 25 at an impossible -97 ms,
        and the reference followed it there)."""
        self.leak_sharpness = leak_sharpness
        """Before a barge-in: a cross-correlation peak this sharp, where the echo is, between what
        passed the filter and what was played means echo leaked (a person talking over the echo
        gave chance peaks of 10-21, anywhere; a room that changed under the filter, 50)."""
        self.voice_share = voice_share
        """...unless this share of the microphone is neither the speaker's echo nor the room's noise
        (:func:`echo_share`, on the microphone as captured, so whatever the filter has learnt): a
        voice. PHAT discards level, so echo under a voice still leaves a sharp peak. On the bench at
        -6 dB, "What is your name?" and "Tell me about the stars", each said over the reply to the
        first half of their turn, were taken for echo (peaks of 36-45) with 26-57 % of the microphone
        not echo; the echo alone, live and offline, left at most 30 %."""
        self._raw: collections.deque[tuple[float, Int16Array]] = collections.deque()
        """The last ``check_s`` of the microphone as captured, for :meth:`is_echo`."""
        self._raw_keep = int(check_s * reference.rate)
        self._out_kept: collections.deque[Int16Array] = collections.deque()  # ...and as cleaned
        self._next_at: float | None = None  # where the microphone's next block should start
        self._restarts = reference.restarts
        self._window = [0, 0, 0.0, 0.0]  # far-end blocks, passed, energy in, energy out (for the log)
        self._collapsed = 0  # far-end blocks in a row with almost no echo removed
        self._jump: float | None = None  # where the first look after a collapse saw the echo
        self.jump_blocks = 3
        self.jump_s = 0.1  # how far a jump is looked for
        self._retrust_blocks = 40  # far-end blocks of proof before the filter is trusted (again)
        self.stuck_blocks = 200
        """A filter still removing less than ``gate_db`` after this many far-end blocks is stuck
        (read from a wrong place after a move, or diverged: the bench once saw 0-3 dB for 24 s
        after a 1 ms follow); it starts again where the echo was last measured. A fresh start
        learnt 18 dB within about 100 blocks in every bench session."""
        self._room = 0.0  # power per sample of the microphone while the speaker is silent
        self.echo_possible = False
        """The last block cleaned may hold the speaker's sound or its echo tail (while the filter is
        untrusted: anything played within the last 2 s, as the gate assumes)."""
        self.robot_audible = False
        """The last block cleaned may hold the speaker's sound or its echo tail where the echo was
        last measured (the filter trusted or not: a leak found there keeps the delay). A voice in a
        block without it cannot be the robot's echo."""
        self._rng = np.random.default_rng(0)

    def _track_delay(self, samples: Int16Array, captured_at: float) -> None:
        self.delay.add(captured_at, samples)
        if not self.delay.due():
            return
        start, n = self.delay.span()
        delay = self.delay.estimate(self.reference.read(start, n))
        if delay is None:
            return
        if self.delay_known and abs(delay - self.aligned_for) <= self.agree_s:
            return
        inside = delay - self.shift_s  # where the echo now sits in the filter
        held = self.aligned_for - self.shift_s  # ...and where the filter learnt it
        if (
            self.delay_known
            and min(self.lead_s / 3, 0.01) <= inside <= self.filter_s - 0.05
            and abs(inside - held) < 0.03
        ):
            # The echo moved (an underrun delays everything after it) but is still inside the
            # filter, which follows it by itself. Reading the reference from elsewhere would
            # undo what it has learnt since the move; it is only trusted once it has shown it.
            moved = (delay - self.aligned_for) * 1000
            self.aligned_for = delay
            self._distrust(f"its echo moved {moved:+.1f} ms")
            return
        self._start_again(delay)

    def _start_again(self, delay: float) -> None:
        """Read the reference ``lead_ms`` ahead of an echo at ``delay`` and learn the room anew."""
        self.delay_known = True
        lead = min(self.lead_s, delay) if delay > 0.01 else 0.01  # the reference must not be late
        self.shift_s = delay - lead
        self.aligned_for = delay
        self.canceller.reset()  # the filter learnt the old alignment
        self._trust_ratio = self.trained_ratio
        self.trained = False
        self._far_blocks = 0
        self._in = self._out = 0.0

    def clean(self, samples: Int16Array, captured_at: float | None) -> Int16Array:
        if captured_at is None:
            self.echo_possible = self.robot_audible = False
            return samples
        self._watch_timelines(captured_at, len(samples))
        self._raw.append((captured_at, samples))
        while sum(len(b) for _, b in self._raw) - len(self._raw[0][1]) >= self._raw_keep:
            self._raw.popleft()
        out = self._clean(samples, captured_at)
        self._out_kept.append(out)
        while len(self._out_kept) > len(self._raw):
            self._out_kept.popleft()
        return out

    def _clean(self, samples: Int16Array, captured_at: float) -> Int16Array:
        if self.reference.sounding(captured_at + 0.5, 2.0):
            self._track_delay(samples, captured_at)
        heard_at = captured_at - self.shift_s
        ref = self.reference.read(heard_at, len(samples))
        out = self.canceller.process(samples, ref)
        where_measured = self.reference.sounding(heard_at, self.tail_s)
        if not self.delay_known or not self.trained:  # until it is known to work, any sound nearby may be echo
            echo_possible = self.reference.sounding(captured_at + 0.6, 2.0)
        else:
            echo_possible = where_measured
        self.echo_possible = echo_possible
        self.robot_audible = where_measured if self.delay_known else echo_possible
        if not echo_possible:
            self._learn_room(out)
            return out
        e_in = float(np.dot(samples.astype(np.float64), samples)) + 1.0
        e_out = float(np.dot(out.astype(np.float64), out)) + 1.0
        self._in += 0.05 * (e_in - self._in)
        self._out += 0.05 * (e_out - self._out)
        self._far_blocks += 1
        if (
            not self.trained
            and self.delay_known
            and self._far_blocks > self._retrust_blocks
            and self._in > self._trust_ratio * self._out
        ):
            self.trained = True
            _log.info("echo canceller has learnt the room (%.0f dB removed)", 10 * np.log10(self._in / self._out))
            self._retrust_blocks, self._trust_ratio = 40, self.trained_ratio
        elif (
            self.delay_known
            and not self.trained
            and self._far_blocks >= self.stuck_blocks
            and self._in < self.gate * self._out
        ):
            _log.info(
                "echo canceller removes %.1f dB after %d blocks of the speaker: learning the room anew",
                10 * np.log10(self._in / self._out),
                self._far_blocks,
            )
            self._start_again(self.aligned_for)
            self.delay.hurry()
        self._watch_for_a_jump(e_in, e_out, len(out))
        gate = max(self.gate, self._in / (self._out * self.double_talk)) if self.trained else self.gate
        passed = self.trained and e_in < gate * e_out and e_out > self.floor * len(out)
        self._note(e_in, e_out, passed=passed)
        if passed:
            return out  # more than echo: the user is speaking
        self.gated_blocks += 1
        return self._comfort_noise(len(out))

    def _learn_room(self, out: Int16Array) -> None:
        """Follow the room's level down at once and up slowly (a voice is no room tone)."""
        p = _power(out)
        self._room = p if p < self._room or self._room == 0.0 else self._room + 0.005 * (p - self._room)

    def _comfort_noise(self, n: int) -> Int16Array:
        noise = self._rng.standard_normal(n) * np.sqrt(self._room)
        return np.clip(np.round(noise), -32768, 32767).astype(np.int16)

    def is_echo(self, *, act: bool = True) -> bool:
        """Is what passed the gate lately the robot's own echo, arriving where the filter does not
        expect it? Asked before a barge-in. If so the filter is not trusted until it is aligned
        again (with ``act``; without, only the answer: asked before a pause, which may be asked
        again every block): the last ``check_s`` of the microphone is matched against what the
        speaker played (the same cross-correlation as the delay finder, with a stricter peak)."""
        if not self._raw or not self.delay_known:
            return False
        start = self._raw[0][0]
        mic = np.concatenate([b for _, b in self._raw])
        span = len(mic) + int((self.delay.max_delay_s - self.delay.min_delay_s) * self.reference.rate)
        played = self.reference.read(start - self.delay.max_delay_s, span)
        at = self.delay.peak(mic, played, sharpness=self.moved_sharpness, still_at=self.aligned_for)
        left = self.delay.peak(np.concatenate(self._out_kept), played, sharpness=0.0)
        voice = self._voice_share(mic, start, self.aligned_for, *([] if left is None else [left[0]]))
        _log.debug(
            "barge-in check: microphone peak %s, after the filter %s, %.0f %% not echo or room (delay %.1f ms)",
            at,
            left,
            100 * voice,
            1000 * self.aligned_for,
        )
        if at is not None and abs(at[0] - self.aligned_for) > self.far_s:
            # Sound the speaker played long before (1.27-1.51 s twice on the bench, both sharp):
            # not this turn's voice, but no move to follow either (the estimator, which needs
            # four looks, takes real moves that far); following it cost the filter ~10 s.
            _log.info("not following an echo %+.0f ms off where it was", 1000 * (at[0] - self.aligned_for))
            return True
        if at is not None and abs(at[0] - self.aligned_for) > self.moved_s:
            if not act:
                return True
            self._distrust(f"its echo came {1000 * (at[0] - self.aligned_for):+.0f} ms off where it was")
            self._follow_at_once(at[0])
            return True
        near = left is not None and -self.lead_s <= left[0] - self.aligned_for <= self.filter_s
        if left is not None and near and left[1] >= self.leak_sharpness:
            if voice >= self.voice_share:
                _log.debug("echo leaks past the filter, but most of what is heard is someone else")
                return False
            if not act:
                return True
            self._distrust("what got past it still follows what the speaker played")
            return True
        return False

    def _watch_for_a_jump(self, e_in: float, e_out: float, n: int) -> None:
        """A filter that removed the echo well and suddenly removes almost nothing: the echo
        jumped (an underrun), or someone is talking. Look where the echo is now, from the last
        ``jump_blocks`` alone: the sooner the reference follows, the less the filter unlearns
        (measured: followed within 0.1 s it is back to 40 dB in a second; after 0.3 s it has
        diverged and takes seconds)."""
        if not self.trained or e_in < self.floor * n:
            self._collapsed = 0
            return
        self._collapsed = self._collapsed + 1 if e_in < self.gate * e_out else 0
        if self._collapsed == 0 or self._collapsed % self.jump_blocks:
            return
        blocks = list(self._raw)[-self.jump_blocks :]
        start = blocks[0][0]
        mic = np.concatenate([b for _, b in blocks])
        low, high = self.aligned_for - self.jump_s, self.aligned_for + self.jump_s
        played = self.reference.read(start - high, len(mic) + int((high - low) * self.reference.rate))
        # someone talking: 11-12 (at -6 dB; at 0 dB up to 21, but the echo still where it was)
        at = self.delay.peak(mic, played, sharpness=15.0, lags_s=(low, high), still_at=self.aligned_for)
        if at is None or abs(at[0] - self.aligned_for) < 2.0 / self.reference.rate:
            self._jump = None
            if self._collapsed >= 3 * self.jump_blocks:
                self.is_echo()  # no jump, and still little removed: a voice, or echo leaking past it?
            return
        if self._jump is None or abs(at[0] - self._jump) > 0.5 / 1000:
            self._jump = at[0]  # two looks in a row must agree: a chance peak in 90 ms is not rare
            return
        _log.info("echo jumped %+.1f ms (peak %.1f): reference follows it", 1000 * (at[0] - self.aligned_for), at[1])
        self._jump = None
        self._distrust("its echo jumped")
        self._follow_at_once(at[0])

    def _follow_at_once(self, delay: float) -> None:
        """The echo has just moved to ``delay`` (an underrun): read the reference that much later
        or earlier now, before the filter has begun to learn the new place, so what it has learnt
        fits again and it is trusted after a short check instead of learning the room anew.
        (The echo keeps its place in the filter: only where the reference is read moves.)"""
        self.shift_s += delay - self.aligned_for
        self.aligned_for = delay
        self.delay.assume(delay)
        self._retrust_blocks, self._trust_ratio = 10, self.retrust_ratio
        self._in = self._out = 0.0

    def _watch_timelines(self, captured_at: float, n: int) -> None:
        moved = self._next_at is not None and abs(captured_at - self._next_at) > 0.5 / self.reference.rate
        self._next_at = captured_at + n / self.reference.rate
        if self.reference.restarts != self._restarts:
            self._restarts = self.reference.restarts
            moved = True
        if moved:
            self._distrust("the sound timing moved")

    def _distrust(self, why: str) -> None:
        if self.trained:
            _log.info("echo canceller not trusted until it is aligned again: %s", why)
        self.trained = False
        self._far_blocks = 0
        self.delay.hurry()

    def _note(self, e_in: float, e_out: float, *, passed: bool) -> None:
        """Every 100 blocks with the speaker sounding: how much echo went and how much passed the gate."""
        w = self._window
        w[0] += 1
        w[1] += passed
        w[2] += e_in
        w[3] += e_out
        if w[0] < 100:
            return
        self._window = [0, 0, 0.0, 0.0]
        if _log.isEnabledFor(logging.DEBUG):  # the share costs a Welch estimate: only when it is logged
            _log.debug(
                "echo: %d of %d blocks passed, %.1f dB removed, delay %.1f ms, read %.1f ms early, %.0f %% other",
                w[1],
                w[0],
                10 * np.log10(w[2] / w[3]),
                self.aligned_for * 1000,
                self.shift_s * 1000,
                100 * self._voice_share(np.concatenate([b for _, b in self._raw]), self._raw[0][0], self.aligned_for),
            )

    def _voice_share(self, mic: Int16Array, start: float, *delays: float) -> float:
        """How much of ``mic`` (captured from ``start``) is neither the speaker's echo at any of
        ``delays`` nor the room's noise (0-1)."""
        rate = self.reference.rate
        echo = max(echo_share(mic, self.reference.read(start - d, len(mic)), rate) for d in delays)
        power = _power(mic)
        noise = min(1.0, self._room / power) if power > 0 else 1.0
        return max(0.0, 1.0 - echo - noise)

    @property
    def stats(self) -> EchoStats:
        return self.canceller.stats


def _power(samples: Int16Array) -> float:
    """Mean power per sample (0 for no samples)."""
    return float(np.mean(samples.astype(np.float64) ** 2)) if len(samples) else 0.0
