"""The play worker: synthesised audio -> speaker; timings; the turn finished.

It records when each block of each sentence is heard, so that a reply cut short by
barge-in knows which of its words the user actually heard.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable

from companion.loop.jobs import AudioJob, InputEnded, ReplyEnd
from companion.loop.state import Heartbeats, LoopState
from companion.messages import PlaybackChunk, State, TurnFinished
from companion.stages import AudioSink, Clock, EventBus

_log = logging.getLogger(__name__)
NAME = "companion-play"
MAX_HOLD_S = 5.0
"""Longest a reply waits for a user who started talking again: until what they say is a
turn (the reply is dropped) or a sound the detector drops (it plays), at most this."""


class PlayWorker:
    def __init__(
        self,
        *,
        inbox: queue.Queue[AudioJob | ReplyEnd | InputEnded],
        sink: AudioSink,
        state: LoopState,
        beats: Heartbeats,
        bus: EventBus,
        clock: Clock,
        echo_tail_s: float,
        cancelled: Callable[[], bool],
        idle_state: Callable[[], State],
        on_finished: Callable[[], None],
    ) -> None:
        self.inbox, self.sink = inbox, sink
        self.state, self.beats, self.bus, self.clock = state, beats, bus, clock
        self.echo_tail_s = echo_tail_s
        self.cancelled = cancelled
        self.idle_state = idle_state
        self.on_finished = on_finished
        self._started: set[int] = set()
        self._first_heard: dict[int, float] = {}

    def run(self) -> None:
        while True:
            item = self.inbox.get()
            if isinstance(item, InputEnded):
                break
            if isinstance(item, ReplyEnd):
                self._finish(item)
                continue
            if self.cancelled() or item.reply.cancelled.is_set():
                continue
            self.beats.beat(NAME, busy=True)
            try:
                self._play(item)
            except Exception as exc:
                _log.exception("playback failed")
                item.reply.record.error = item.reply.record.error or f"playback: {exc}"
            finally:
                self.beats.beat(NAME, busy=False)
        self.sink.close()

    def _play(self, item: AudioJob) -> None:
        reply, audio = item.reply, item.audio
        turn = reply.turn
        if turn not in self._started:
            if not self.state.speaking_started(reply, MAX_HOLD_S):
                return  # the user went on talking: the reply was dropped before a word of it
            self._started.add(turn)
            self.sink.begin(turn)
            self.state.set(State.SPEAKING)
        now = self.clock()
        delay = self.sink.write(audio)
        heard = now + delay
        reply.played.setdefault(audio.sentence, []).append((heard, heard + audio.seconds))
        if turn not in self._first_heard:
            self._first_heard[turn] = heard
            reply.record.timings_ms["playback_delay"] = delay * 1000.0
        self.bus.publish(PlaybackChunk(audio, delay))

    def _finish(self, done: ReplyEnd) -> None:
        reply = done.reply
        record = reply.record
        started = record.turn in self._started
        self._started.discard(record.turn)
        heard_at = self._first_heard.pop(record.turn, None)
        if started:
            try:
                record.audio = self.sink.end(record.turn)
            except Exception as exc:
                _log.exception("finishing playback failed")
                record.error = record.error or f"playback: {exc}"
        if heard_at is not None and done.detected_at:
            record.timings_ms["response"] = done.vad_ms + (heard_at - done.detected_at) * 1000.0
        if reply.cancelled.is_set() and reply.cut_at is not None:
            record.interrupted = True
            record.heard_reply = reply.heard_text()
        self.state.speaking_ended(reply, self.echo_tail_s)
        if record.heard or record.spoken:
            if record.interrupted:
                _log.info("said (interrupted): %s", record.heard_reply)
            elif started:
                _log.info("said: %s", record.spoken)
        self.on_finished()
        self.bus.publish(TurnFinished(record))
        reply.done.set()
        self.state.turn_ended()
        # a turn heard meanwhile (the user went on talking) is being answered: not idle
        self.state.set(State.THINKING if self.state.busy else self.idle_state())
