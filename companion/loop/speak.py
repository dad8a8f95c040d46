"""The speak worker: each sentence of a reply -> its voice's synthesizer -> play queue."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable

from companion.loop.jobs import AudioJob, InputEnded, ReplyEnd, SpeakJob
from companion.loop.state import Heartbeats
from companion.messages import SpokenAudio
from companion.stages import Clock

_log = logging.getLogger(__name__)
NAME = "companion-voice"


class SpeakWorker:
    def __init__(
        self,
        *,
        inbox: queue.Queue[SpeakJob | ReplyEnd | InputEnded],
        audio: queue.Queue[AudioJob | ReplyEnd | InputEnded],
        beats: Heartbeats,
        clock: Clock,
        cancelled: Callable[[], bool],
    ) -> None:
        self.inbox, self.audio = inbox, audio
        self.beats, self.clock = beats, clock
        self.cancelled = cancelled

    def run(self) -> None:
        while True:
            job = self.inbox.get()
            if isinstance(job, InputEnded):
                break
            if isinstance(job, ReplyEnd):
                self.audio.put(job)
                continue
            if self.cancelled() or job.reply.cancelled.is_set():
                continue
            self.beats.beat(NAME, busy=True)
            try:
                self._speak(job)
            except Exception as exc:
                _log.exception("text-to-speech failed on %r; skipping the sentence", job.sentence.spoken)
                job.reply.record.error = job.reply.record.error or f"tts: {exc}"
            finally:
                self.beats.beat(NAME, busy=False)
        self.audio.put(InputEnded())

    def _speak(self, job: SpeakJob) -> None:
        reply, sentence = job.reply, job.sentence
        if not sentence.spoken.strip():  # the rest of a sentence whose words were all said already
            return
        synth = reply.synth
        t = self.clock()
        for block in synth.synthesize(sentence.spoken, speed=reply.speed):
            if sentence.index == 0 and "tts_first_audio" not in reply.record.timings_ms:
                reply.record.timings_ms["tts_first_audio"] = (self.clock() - t) * 1000.0
            self.audio.put(AudioJob(SpokenAudio(block, synth.sample_rate, reply.turn, sentence.index), reply))
            self.beats.beat(NAME, busy=True)
            if self.cancelled() or reply.cancelled.is_set():
                break
