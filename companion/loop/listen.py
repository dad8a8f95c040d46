"""The listen worker: microphone -> echo cancellation -> turn detector -> think queue.

While the robot speaks it either hears nothing (half-duplex) or, with barge-in,
keeps listening to the echo-cancelled microphone: voiced audio lasting
``barge_in_ms`` interrupts the reply, and the interruption (with its pre-roll)
becomes the next turn.
"""

from __future__ import annotations

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
from companion.loop.bargein import BargeIn
from companion.loop.drafts import Drafts
from companion.loop.jobs import InputEnded, ThinkJob
from companion.loop.options import LoopOptions
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
        self.on_draft = on_draft
        self.sleep = sleep
        self.stop = stop
        self.muted = False
        self.ptt: bool | None = None  # None: no push-to-talk button
        self._release = False  # the talk button was just let go: end the turn now
        self._barge = BargeIn(
            detector=detector, state=state, listen=listen, echo=echo, on_barge_in=on_barge_in, on_pause=on_pause
        )

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
                self._barge.cleaned(chunk)
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

    def _went_on(self, heard: list[Utterance], voiced_before: float) -> None:
        """The user talks again before the reply to their turn was heard ("That sounds lovely.
        [a pause] Goodbye for now!"): the reply waits, and is dropped if this becomes a turn of
        its own (the model then sees both). A sound the detector drops (a knock, a rise in the
        background: no voice count alone tells those apart) lets it go. It waits from the first
        voiced frame, not from the turn's start ``start_ms`` later: a reply about to play then
        started over the user ("Can you remind me to [850 ms] buy some milk")."""
        state = self.state
        sounding = self.detector.in_speech or self.detector.may_be_starting
        if state.holding:
            if heard and voiced_before >= self.listen.barge_in_ms:
                reply = state.interrupt()
                if reply is not None:
                    _log.info("the user went on talking: reply %d dropped before it was heard", reply.turn)
            elif not sounding:
                state.release()
        elif sounding and state.hold():
            _log.debug("the user is talking again: the reply waits")

    def _hear(self, chunk: AudioChunk) -> None:
        voiced_before = self.detector.voiced_ms
        heard = self.detector.feed(chunk)
        draft = self.detector.take_draft()
        if draft is not None and self.options.speculative_stt:
            on_draft = self.on_draft
            self.drafts.start(draft, None if on_draft is None else functools.partial(on_draft, draft))
        if self.barge_in and self.state.speaking:
            still = self._barge.over_reply(chunk.end_s, heard, voiced_before)
            if still is None:  # the robot's own echo: no turn
                self.drafts.follow(self.detector)
                return
            heard = still
        elif self._barge.paused:
            self._barge.reply_over()
        elif self.options.resume_turns and self.state.reply is not None:
            self._went_on(heard, voiced_before)
        if heard:
            self._queue(heard)
            if self.state.state in (State.IDLE, State.LISTENING):
                self.state.set(State.THINKING)
        self.drafts.follow(self.detector)
