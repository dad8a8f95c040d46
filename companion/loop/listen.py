"""The listen worker: microphone -> echo cancellation -> turn detector -> think queue.

While the robot speaks it either hears nothing (half-duplex) or, with barge-in,
keeps listening to the echo-cancelled microphone: voiced audio lasting
``barge_in_ms`` interrupts the reply, and the interruption (with its pre-roll)
becomes the next turn.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

from companion.audio.echo_path import EchoPath
from companion.config import ListenSettings
from companion.errors import NoAudioDeviceError
from companion.loop.drafts import Drafts
from companion.loop.jobs import InputEnded, ThinkJob
from companion.loop.options import LoopOptions
from companion.loop.overlap import RobotVoice
from companion.loop.state import Heartbeats, LoopState
from companion.messages import AudioChunk, State, Utterance
from companion.stages import AudioSource, DeviceLost
from companion.vad import TurnDetector

_log = logging.getLogger(__name__)
NAME = "companion-listen"


class ListenWorker:
    def __init__(
        self,
        *,
        source: AudioSource,
        detector: TurnDetector,
        state: LoopState,
        beats: Heartbeats,
        drafts: Drafts,
        turns: queue.Queue[ThinkJob],
        listen: ListenSettings,
        options: Callable[[], LoopOptions],
        echo: EchoPath | None,
        on_barge_in: Callable[[], object],
        on_pause: Callable[[bool], object],
        on_draft: Callable[[Utterance, Future[str]], None] | None,
        sleep: Callable[[float], bool],
        stop: threading.Event,
    ) -> None:
        self.source, self.detector = source, detector
        self.state, self.beats, self.drafts, self.turns = state, beats, drafts, turns
        self.listen, self._options = listen, options
        self.echo = echo
        self.on_barge_in = on_barge_in
        self.on_pause = on_pause
        self.on_draft = on_draft
        self.sleep = sleep
        self.stop = stop
        self.muted = False
        self.ptt: bool | None = None  # None: no push-to-talk button
        self._release = False  # the talk button was just let go: end the turn now
        self._interrupted_turn = 0  # the reply turn already interrupted (once per reply)
        self._voiced: collections.deque[tuple[float, float]] = collections.deque()  # (time, voiced ms so far)
        self._paused = False  # the robot's voice is paused for a voice that may interrupt it
        self._last_voice_s = 0.0  # when the detector last counted a voiced frame
        self._went_on_at = 0.0  # the detector's voiced ms when a paused voice last went on
        self._robot = RobotVoice()

    @property
    def options(self) -> LoopOptions:
        """The loop's options now (``companion bench --alternate`` switches them between turns)."""
        return self._options()

    @property
    def barge_in(self) -> bool:
        """Talking over the robot interrupts it (a live microphone only)."""
        return self.options.barge_in and self.source.live

    # ---- buttons (called from other threads) ------------------------------------------

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        _log.info("microphone %s", "muted" if muted else "listening")

    def enable_push_to_talk(self) -> None:
        if self.ptt is None:
            self.ptt = False

    def set_talk_button(self, held: bool) -> None:
        self.ptt = held
        if not held:
            self._release = True

    # ---- the worker -------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._listen()
                break
            except (DeviceLost, NoAudioDeviceError) as exc:
                if self.stop.is_set():
                    break
                backoff = self.options.reconnect_backoff_s
                wait = backoff[min(failures, len(backoff) - 1)]
                failures += 1
                _log.warning("microphone lost (%s); trying again in %.1f s", exc, wait)
                self.detector.reset()
                self.state.set(State.ERROR)
                self.beats.beat(NAME)
                if self.sleep(wait):
                    break
        if not self.stop.is_set():
            self._queue(self.detector.flush())
        self.turns.put(InputEnded())

    def _queue(self, utterances: list[Utterance]) -> None:
        for utt in utterances:
            _log.debug("turn heard: %.2f-%.2f s%s", utt.start_s, utt.end_s, " (cut)" if utt.cut else "")
            self.drafts.heard(utt)
            self.state.turn_started()
            self.turns.put(utt)

    def _deaf(self) -> bool:
        """Half-duplex: the robot's own voice must not become a turn."""
        if not self.source.live or self.barge_in or not self.listen.ignore_while_speaking:
            return False
        return self.state.in_echo_window()

    def _listen(self) -> None:
        was_in_speech = False
        recovered = self.state.state == State.ERROR
        for chunk in self.source.chunks():
            if recovered:
                recovered = False
                _log.info("microphone back; listening again")
                self.state.set(State.IDLE)
            self.beats.beat(NAME)
            if self.stop.is_set():
                break
            if self.echo is not None:
                chunk = replace(chunk, samples=self.echo.clean(chunk.samples, chunk.captured_at))
                self._robot.update(chunk, self.echo.echo_possible)
            if self.muted or self._deaf() or self.ptt is False:
                if self._release:
                    self._release = False
                    self._queue(self.detector.flush())
                elif self.detector.in_speech:
                    self.detector.reset()
                    self.drafts.follow(self.detector)  # drops the turn's live stream, if any
                continue
            self._hear(chunk)
            if self.detector.in_speech != was_in_speech:
                was_in_speech = self.detector.in_speech
                if self.state.state in (State.IDLE, State.LISTENING):
                    self.state.set(State.LISTENING if was_in_speech else State.IDLE)

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

    PAUSE_GAP_S = 0.25
    """A paused voice (:meth:`_pause_for_voice`) carries on after this long without a voiced frame."""

    def _pause_for_voice(self, now_s: float, voiced_before: float) -> None:
        """Pause the robot's voice while a voice over it may become an interruption.

        At ``barge_in_pause_ms`` of voice (of the ``barge_in_ms`` that interrupt) the robot
        falls silent, so it stops talking over the user at once; its echo then no longer
        masks the voice, which reaches ``barge_in_ms`` sooner. A cough or knock stops
        short: after :data:`PAUSE_GAP_S` without voice the reply goes on where it paused.
        Not while the echo canceller is still learning (at the start, after the echo moved):
        then its echo leaks in runs of 120-250 ms, and each would be a stutter.
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
            and min(self._recent_voiced_ms(now_s), self.detector.voiced_ms - self._went_on_at) >= pause_ms
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

    def _went_on(self, heard: list[Utterance], voiced_before: float) -> None:
        """The user talks again before the reply to their turn was heard ("That sounds lovely.
        [a pause] Goodbye for now!"): the reply waits, and is dropped if this becomes a turn of
        its own (the model then sees both). A sound the detector drops (a knock, a rise in the
        background: no voice count alone tells those apart) lets it go."""
        state = self.state
        if state.holding:
            if heard and voiced_before >= self.listen.barge_in_ms:
                reply = state.interrupt()
                if reply is not None:
                    _log.info("the user went on talking: reply %d dropped before it was heard", reply.turn)
            elif not self.detector.in_speech:
                state.release()
        elif self.detector.in_speech and state.hold():
            _log.debug("the user is talking again: the reply waits")

    def _hear(self, chunk: AudioChunk) -> None:
        voiced_before = self.detector.voiced_ms
        heard = self.detector.feed(chunk)
        draft = self.detector.take_draft()
        if draft is not None and self.options.speculative_stt:
            on_draft = self.on_draft
            self.drafts.start(draft, None if on_draft is None else functools.partial(on_draft, draft))
        if self.barge_in and self.state.speaking:
            reply = self.state.reply
            if reply is not None and reply.turn != self._interrupted_turn:
                # A voice held for barge_in_ms, or a whole turn heard over the reply ("Wait, stop."
                # and a pause: its voice came in two short runs, but it is a turn to answer now).
                held = self._recent_voiced_ms(chunk.end_s) >= self.listen.barge_in_ms
                if held or (heard and voiced_before >= self.listen.barge_in_ms):
                    # a voice that began while the robot was silent is no echo of it (see overlap)
                    first = self._robot.came_first(self.detector.onset_s)
                    if self.echo is not None and not first and self.echo.is_echo():
                        _log.info("not a barge-in: the robot's own echo got past the canceller")
                        if self._paused:
                            self._resume("it was its own echo")
                        self.detector.reset()  # its echo is no turn either
                        self.drafts.follow(self.detector)
                        return
                    self._interrupted_turn = reply.turn
                    self._paused = False
                    _log.info(
                        "barge-in: the user spoke over reply %d%s%s",
                        reply.turn,
                        "" if held else " (a whole turn)",
                        " (their voice began first)" if first else "",
                    )
                    self.on_barge_in()
                elif heard:
                    _log.debug(
                        "a turn too short to interrupt the robot (under %d ms of voice)", self.listen.barge_in_ms
                    )
                    heard = []
                if reply.turn != self._interrupted_turn:
                    self._pause_for_voice(chunk.end_s, voiced_before)
        elif self._paused:
            self._resume("the reply is over")
        elif self.options.resume_turns and self.state.reply is not None:
            self._went_on(heard, voiced_before)
        if heard:
            self._queue(heard)
            if self.state.state in (State.IDLE, State.LISTENING):
                self.state.set(State.THINKING)
        self.drafts.follow(self.detector)
