"""The think worker: transcript -> wake check -> LLM stream -> sentences -> speak queue.

A reply's first clause may go to the voice before the model has finished its
sentence (:class:`companion.script.StreamScript`).

It owns the conversation side of the loop: the persona, the chat model and the
voice in use. Say jobs and persona swaps arrive on the same queue as turns, so
they never interleave with a reply that is still being written.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator

from companion.config import ListenSettings
from companion.loop.drafts import Drafts, StageTimeout
from companion.loop.jobs import InputEnded, PersonaJob, ReplyEnd, SayJob, SpeakJob, ThinkJob
from companion.loop.state import Heartbeats, LoopState, Reply
from companion.loop.wake import strip_wake_phrase
from companion.messages import PersonaPrompt, ReplySentence, State, Transcript, TurnRecord, Utterance
from companion.persona import Persona
from companion.script import Piece, StreamScript, spoken_form
from companion.sentences import FIRST_CLAUSE_WORDS
from companion.stages import Chat, Clock, EventBus, Synthesizer
from companion.worker import iterate_in_thread

_log = logging.getLogger(__name__)
NAME = "companion-think"


def stream_with_timeout(
    make: Callable[[], Iterator[str]], timeout: float, name: str = "companion-llm-stream"
) -> Iterator[str]:
    """Iterate ``make()`` on a helper thread; raise :class:`StageTimeout` if a piece takes too long."""
    try:
        yield from iterate_in_thread(make, name=name, timeout=timeout)
    except TimeoutError:
        raise StageTimeout(f"no reply from the language model in {timeout:g} s") from None


def _sentences(pieces: list[Piece]) -> int:
    return sum(p.ends_sentence for p in pieces)  # a first clause said early is not a sentence yet


class ThinkWorker:
    def __init__(
        self,
        *,
        chat: Chat,
        tts: Synthesizer,
        persona: Persona,
        state: LoopState,
        beats: Heartbeats,
        drafts: Drafts,
        bus: EventBus,
        clock: Clock,
        inbox: queue.Queue[ThinkJob],
        speech: queue.Queue[SpeakJob | ReplyEnd | InputEnded],
        listen: ListenSettings,
        max_sentences: int,
        stage_timeout_s: float,
        cancelled: Callable[[], bool],
        first_clause: Callable[[], bool] = lambda: True,
    ) -> None:
        self.chat, self.tts, self.persona = chat, tts, persona
        self.state, self.beats, self.drafts, self.bus, self.clock = state, beats, drafts, bus, clock
        self.inbox, self.speech = inbox, speech
        self.listen = listen
        self.max_sentences = max_sentences
        self.first_clause = first_clause
        """Whether to say a reply's first clause before its sentence ends (read per reply)."""
        self.stage_timeout_s = stage_timeout_s
        self.cancelled = cancelled
        self._last: Reply | None = None

    def wake_phrases(self) -> tuple[str, ...]:
        return (self.persona.name, *self.persona.wake_phrases, *self.listen.wake_phrases)

    def run(self) -> None:
        while True:
            job = self.inbox.get()
            if isinstance(job, InputEnded):
                break
            if isinstance(job, PersonaJob):
                self._become(job)
                continue
            if self.cancelled():
                self.state.turn_ended()
                continue
            self.beats.beat(NAME, busy=True)
            try:
                self._settle_last()
                answered = self._say(job) if isinstance(job, SayJob) else self._answer(job)
                if not answered:
                    self.state.turn_ended()
                elif self.inbox.empty() and not self.cancelled():
                    self._prefill()
            finally:
                self.beats.beat(NAME, busy=False)
        self.speech.put(InputEnded())

    # ---- persona ----------------------------------------------------------------------

    def _become(self, job: PersonaJob) -> None:
        self.persona = job.persona
        if job.tts is not None:
            self.tts = job.tts
        prompt = PersonaPrompt(job.persona.system_prompt, tuple((e.user, e.assistant) for e in job.persona.examples))
        set_persona = getattr(self.chat, "set_persona", None)  # a chat that knows the persona's facts
        if set_persona is not None:
            set_persona(job.persona)
        self.chat.reset(prompt, keep_memory=job.keep_memory)
        _log.info("persona is now %s", job.persona.name)

    # ---- memory of what was really heard ------------------------------------------------

    def _settle_last(self) -> None:
        """Before the next turn: if the last reply was cut short, remember only what was heard."""
        last, self._last = self._last, None
        if last is None or not last.cancelled.is_set():
            return
        last.done.wait(timeout=2.0)
        heard = last.heard_text()
        self.chat.remember_spoken(f"{heard}—" if heard else "—")

    # ---- jobs -------------------------------------------------------------------------

    def _open(self, record: TurnRecord, speed: float | None = None) -> Reply:
        reply = Reply(record, self.tts, speed)
        self.state.open_reply(reply)
        self._last = reply
        return reply

    def _say(self, job: SayJob) -> bool:
        self.state.set(State.THINKING)
        reply = self._open(job.record, job.speed)
        now = self.clock()
        for index, (text, spoken) in enumerate(zip(job.script.written, job.script.spoken, strict=True)):
            self._put(reply, index, text, spoken, now, fill=False)
        self.speech.put(ReplyEnd(reply, 0.0, 0.0))
        return True

    def _put(self, reply: Reply, index: int, text: str, spoken: str, t_llm: float, *, fill: bool = True) -> None:
        record = reply.record
        if index == 0 and "first_sentence" not in record.timings_ms:  # or its first clause
            record.timings_ms["first_sentence"] = (self.clock() - t_llm) * 1000.0
        if spoken.strip():  # a rest of a sentence styled to nothing is never heard
            reply.written[index] = text
        sentence = ReplySentence(record.turn, index, text, spoken)
        if fill:
            record.reply = f"{record.reply} {text}".strip()
            record.spoken = f"{record.spoken} {spoken}".strip()
        self.bus.publish(sentence)
        self.speech.put(SpeakJob(sentence, reply, self.clock()))

    def _queue_sentences(self, reply: Reply, texts: list[str], t_llm: float, first: int) -> None:
        for index, text in enumerate(texts, start=first):
            self._put(reply, index, text, spoken_form(self.persona, text), t_llm)

    def _answer(self, utt: Utterance) -> bool:
        """Answer one turn; False if there was nothing to answer."""
        vad_ms = (utt.detected_s - utt.end_s) * 1000.0
        self.state.set(State.THINKING)
        record = TurnRecord(turn=0, speech_end_s=utt.end_s, persona=self.persona.name)
        record.timings_ms["vad"] = vad_ms
        t = self.clock()
        try:
            heard = self.drafts.transcribe(utt, self.stage_timeout_s)
        except Exception as exc:
            _log.exception("speech-to-text failed")
            record.turn = self.state.next_turn()
            record.error = f"stt: {exc}"
            reply = self._open(record)
            self._queue_sentences(reply, [self.persona.fallback], self.clock(), 0)
            self.speech.put(ReplyEnd(reply, utt.detected_at, vad_ms))
            return True
        record.timings_ms["stt"] = (self.clock() - t) * 1000.0
        request = heard
        if self.listen.mode == "wake":
            after_wake = strip_wake_phrase(heard, self.wake_phrases()) if heard else None
            if after_wake is None:
                _log.info("not for me (no wake phrase): %r", heard)
                self.state.set(State.IDLE)
                return False
            request = after_wake
        if not heard.strip():
            _log.info("heard nothing intelligible")
            self.state.set(State.IDLE)
            return False
        record.turn = self.state.next_turn()
        record.heard = heard
        self.bus.publish(Transcript(heard, utt))
        _log.info("heard: %s", heard)
        reply = self._open(record)
        if not request.strip() and self.persona.greeting:  # just the wake phrase: greet
            self._queue_sentences(reply, [self.persona.greeting], self.clock(), 0)
        else:
            self._stream_reply(reply, request or "Hello!")
        self.speech.put(ReplyEnd(reply, utt.detected_at, vad_ms))
        return True

    def _stream_reply(self, reply: Reply, request: str) -> None:
        record = reply.record
        words = FIRST_CLAUSE_WORDS if self.first_clause() else 0
        script = StreamScript(self.persona, first_clause_words=words)
        pieces: list[Piece] = []  # handed to the voice
        t_llm = self.clock()
        stream = None
        try:
            stream = stream_with_timeout(lambda: self.chat.reply(request), self.stage_timeout_s)
            for piece in stream:
                self.beats.beat(NAME, busy=True)  # progress: not hung
                if "llm_first_token" not in record.timings_ms:
                    record.timings_ms["llm_first_token"] = (self.clock() - t_llm) * 1000.0
                self._queue_pieces(reply, script.feed(piece), t_llm, pieces)
                if _sentences(pieces) >= self.max_sentences or reply.cancelled.is_set() or self.cancelled():
                    break
            else:
                self._queue_pieces(reply, script.flush(), t_llm, pieces)
        except Exception as exc:
            _log.exception("the language model failed")
            record.error = f"llm: {exc}"
            if not pieces:
                self._queue_sentences(reply, [self.persona.fallback], t_llm, 0)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        record.timings_ms["llm_total"] = (self.clock() - t_llm) * 1000.0
        if pieces:
            self.chat.remember_spoken(" ".join(p.written for p in pieces))
        if not pieces and record.error is None and not reply.cancelled.is_set():
            record.error = "llm: empty reply"
            self._queue_sentences(reply, [self.persona.fallback], t_llm, 0)

    def _queue_pieces(self, reply: Reply, new: list[Piece], t_llm: float, pieces: list[Piece]) -> None:
        """Hand ``new`` pieces to the voice, up to :attr:`max_sentences` complete sentences."""
        for piece in new:
            if _sentences(pieces) >= self.max_sentences:
                return
            self._put(reply, len(pieces), piece.written, piece.spoken, t_llm)
            pieces.append(piece)

    def _prefill(self) -> None:
        """While the user listens to the reply: prepare the LLM for the next turn."""
        try:
            self.chat.prefill()
        except Exception:
            _log.exception("preparing the language model for the next turn failed")
