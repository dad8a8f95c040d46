"""Barge-in: is a voice heard over the robot an interruption, its own echo, or a cough?

Owned by the listen worker and fed from its thread only. While the robot speaks, voiced
audio on the echo-cancelled microphone lasting ``barge_in_ms`` interrupts the reply. With
``barge_in_pause_ms`` the robot's voice pauses sooner, at the start of such a voice, and
goes on if no interruption follows.

Before it interrupts, the echo canceller's leak check may call the voice the robot's own
echo. It is not asked about a voice that began while the robot was silent, nor about one
heard where the robot's sound cannot be (paused, or between sentences, its echo died away):
the echo cannot go on without the robot. A voice it calls echo while the robot is paused
keeps it paused until that is settled: the voice goes on alone, or stops and the reply goes on.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable

from companion.audio.echo_path import EchoPath
from companion.config import ListenSettings
from companion.loop.overlap import RobotVoice
from companion.loop.state import LoopState
from companion.messages import AudioChunk, Utterance
from companion.vad import TurnDetector

_log = logging.getLogger(__name__)


class BargeIn:
    """The barge-in rule for one listen worker."""

    PAUSE_GAP_S = 0.25
    """A paused voice (:meth:`_pause_for_voice`) carries on after this long without a voiced frame."""

    def __init__(
        self,
        *,
        detector: TurnDetector,
        state: LoopState,
        listen: ListenSettings,
        echo: EchoPath | None,
        on_barge_in: Callable[[], object],
        on_pause: Callable[[bool], object],
    ) -> None:
        self.detector, self.state, self.listen, self.echo = detector, state, listen, echo
        self.on_barge_in, self.on_pause = on_barge_in, on_pause
        self._interrupted_turn = 0  # the reply turn already interrupted (once per reply)
        self._voiced: collections.deque[tuple[float, float]] = collections.deque()  # (time, voiced ms so far)
        self._paused = False  # the robot's voice is paused for a voice that may interrupt it
        self._last_voice_s = 0.0  # when the detector last counted a voiced frame
        self._went_on_at = 0.0  # the detector's voiced ms when a paused voice last went on
        self._robot = RobotVoice()
        self._robot_audible = False  # the last chunk may hold the robot's sound (where its echo was measured)
        self._voice_alone_ms = 0.0  # voiced ms heard while the robot could not be heard (this run of speech)
        self._doubted = 0  # the reply over which the leak check called this run of voice echo while it was paused

    def cleaned(self, chunk: AudioChunk) -> None:
        """A microphone chunk just out of the echo canceller: note whether it may hold the robot's sound."""
        if self.echo is not None:
            self._robot.update(chunk, self.echo.echo_possible)
            self._robot_audible = self.echo.robot_audible

    @property
    def paused(self) -> bool:
        """The robot's voice is paused for a voice that may interrupt it."""
        return self._paused

    def reply_over(self) -> None:
        """The robot is no longer speaking: a voice it paused for goes on (there is nothing left to pause)."""
        if self._paused:
            self._resume("the reply is over")

    def over_reply(self, end_s: float, heard: list[Utterance], voiced_before: float) -> list[Utterance] | None:
        """The detector just took a chunk (ending at ``end_s``) while the robot speaks.

        Interrupts the reply for a voice held ``barge_in_ms`` (or a whole turn heard over it),
        and pauses it at the start of one. Returns the turns still to answer (a turn too short
        to interrupt is none), or None when the voice was the robot's own echo: then the
        detector's turn is dropped too."""
        reply = self.state.reply
        if reply is None or reply.turn == self._interrupted_turn:
            return heard
        self._count_voice_alone(voiced_before)
        # A voice held for barge_in_ms, or a whole turn heard over the reply ("Wait, stop." and a
        # pause: its voice came in two short runs, but it is a turn to answer now).
        recent = self._recent_voiced_ms(end_s)
        held = recent >= self.listen.barge_in_ms
        if held or (heard and voiced_before >= self.listen.barge_in_ms):
            # a voice that began while the robot was silent is no echo of it (see overlap), nor
            # one that went on while it was paused and its echo had died away
            first = self._robot.came_first(self.detector.onset_s)
            alone = self._voice_alone_ms >= self.VOICE_ALONE_MS
            if self.echo is not None and not first and not alone and self._echo_verdict(reply.turn):
                if self._paused and not heard:  # it is quiet now: if the voice goes on alone it was no echo
                    self._pause_for_voice(end_s, voiced_before, recent)  # ...and after a gap the reply goes on
                    if self._paused:
                        return []
                _log.info("not a barge-in: the robot's own echo got past the canceller")
                if self._paused:
                    self._resume("it was its own echo")
                self.detector.reset()  # its echo is no turn either
                return None
            self._interrupted_turn = reply.turn
            self._paused = False
            _log.info(
                "barge-in: the user spoke over reply %d%s%s",
                reply.turn,
                "" if held else " (a whole turn)",
                " (their voice began first)" if first else " (their voice went on alone)" if alone else "",
            )
            self.on_barge_in()
            return heard
        if heard:
            _log.debug("a turn too short to interrupt the robot (under %d ms of voice)", self.listen.barge_in_ms)
            heard = []
        self._pause_for_voice(end_s, voiced_before, recent)
        return heard

    VOICE_ALONE_MS = 120
    """Voiced audio heard in blocks that cannot hold the robot's sound (paused, or between
    sentences, and its echo died away) that proves a voice: its echo cannot go on without it."""

    def _count_voice_alone(self, voiced_before: float) -> None:
        if not self.detector.in_speech:
            self._voice_alone_ms = 0.0
            self._doubted = 0
        elif not self._robot_audible:
            self._voice_alone_ms += max(0.0, self.detector.voiced_ms - voiced_before)

    def _echo_verdict(self, turn: int) -> bool:
        """The canceller's leak check, asked once per run of voice while the robot is paused
        (it stays paused on a verdict of echo: whether the voice goes on alone settles it)."""
        if self._doubted == turn:
            return True
        echo = self.echo is not None and self.echo.is_echo()
        if echo and self._paused:
            self._doubted = turn
            _log.info("a voice over reply %d looks like its echo; the robot stays paused to hear if it goes on", turn)
        return echo

    def _recent_voiced_ms(self, now_s: float) -> float:
        """Voiced audio in the last ``barge_in_ms * 2.5``: a voice, not scattered echo or knocks.

        Over the echo the cleaned voice comes in runs ("Wait, stop." at 0 dB: 210 ms voiced, 210 ms
        gated, 210 ms voiced): within 1.5 x barge_in_ms it never held, and the robot stopped only
        when the turn ended (800-880 ms). Replayed from three bench sessions, 2.5 x cut that to
        480-510 ms, "Excuse me, ..." 660 -> 570 ms, and fired on no echo alone."""
        voiced = self.detector.voiced_ms
        window = self._voiced
        if not self.detector.in_speech or (window and voiced < window[-1][1]):
            window.clear()
        window.append((now_s, voiced))
        horizon = now_s - 2.5 * self.listen.barge_in_ms / 1000.0
        while len(window) > 1 and window[1][0] <= horizon:
            window.popleft()
        return voiced - window[0][1] if window[0][0] <= horizon else voiced

    def _pause_for_voice(self, now_s: float, voiced_before: float, recent_ms: float) -> None:
        """Pause the robot's voice while a voice over it may become an interruption.

        At ``barge_in_pause_ms`` of voice (of the ``barge_in_ms`` that interrupt) the robot
        falls silent, so it stops talking over the user at once; its echo then no longer
        masks the voice, which reaches ``barge_in_ms`` sooner. A cough or knock stops
        short: after :data:`PAUSE_GAP_S` without voice the reply goes on where it paused.
        Not while the echo canceller is still learning (at the start, after the echo moved):
        then its echo leaks in runs of 120-250 ms, and each would be a stutter.
        ``recent_ms``: :meth:`_recent_voiced_ms` for this chunk (asked once per chunk).
        """
        voiced_now = self.detector.voiced_ms > voiced_before
        if voiced_now:
            self._last_voice_s = now_s
        if not self.detector.in_speech or self.detector.voiced_ms < self._went_on_at:
            self._went_on_at = 0.0  # a new run of speech
        pause_ms = self.listen.barge_in_pause_ms
        if self._paused:
            if now_s - self._last_voice_s >= self.PAUSE_GAP_S or not self.detector.in_speech:
                self._resume("no interruption followed")
                self._went_on_at = self.detector.voiced_ms  # what paused it once does not again
        elif (
            0 < pause_ms < self.listen.barge_in_ms
            and voiced_now
            and self.detector.in_speech
            and min(recent_ms, self.detector.voiced_ms - self._went_on_at) >= pause_ms
            and (
                self.echo is None
                or self._robot.came_first(self.detector.onset_s)
                or (self.echo.delay_known and self.echo.trained and not self.echo.is_echo(act=False))
            )
        ):
            self._paused = True
            _log.debug("a voice over the robot (%d ms): its voice pauses", pause_ms)
            self.on_pause(True)

    def _resume(self, why: str) -> None:
        self._paused = False
        _log.info("the robot's voice goes on: %s", why)
        self.on_pause(False)
