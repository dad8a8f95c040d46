"""The voice loop: hear a turn, understand it, answer in character, speak.

Four named threads, each owned by :class:`VoiceLoop` and ended by :meth:`stop`:

- ``companion-listen``: audio source -> turn detector -> turn queue
- ``companion-think``:  STT -> wake check -> LLM stream -> sentences -> style -> speech queue
- ``companion-voice``:  TTS, sentence by sentence -> audio queue
- ``companion-play``:   audio -> speaker; timings; turn finished

The first sentence is synthesised and played while the LLM is still writing the
rest. A stage that fails is logged; the persona's fallback line is said instead
and the loop goes on.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from companion.config import ListenSettings
from companion.errors import NoAudioDeviceError
from companion.messages import (
    PersonaPrompt,
    PlaybackChunk,
    ReplySentence,
    SpokenAudio,
    State,
    StateChange,
    Transcript,
    TurnFinished,
    TurnRecord,
    Utterance,
)
from companion.persona import Persona
from companion.sentences import SentenceSplitter
from companion.stages import (
    AudioSink,
    AudioSource,
    Chat,
    Clock,
    DeviceLost,
    EventBus,
    SpeechToText,
    Synthesizer,
)
from companion.vad import TurnDetector
from companion.worker import iterate_in_thread

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopOptions:
    max_sentences: int = 3
    """Stop the reply after this many sentences."""
    stage_timeout_s: float = 20.0
    """A stage busy longer than this is considered hung."""
    speculative_stt: bool = True
    """Transcribe a turn while the detector waits out the end-of-turn silence."""
    speculative_prefill: bool = False
    """Let the LLM read the speculative transcript before the end of the turn is confirmed.
    Off: it cut the first token from ~90 to ~5 ms, but over a 25-turn bench later turns got
    slower (median 1253 vs 971 ms), so it stays an experiment until that is understood."""
    reconnect_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Waits between attempts to reopen a lost microphone (the last one repeats)."""


# ---- messages between the loop's own threads ----------------------------------------------


@dataclass(frozen=True)
class _SpeakJob:
    sentence: ReplySentence
    record: TurnRecord
    queued_at: float
    speed: float | None = None


@dataclass(frozen=True)
class _ReplyDone:
    record: TurnRecord
    detected_at: float
    vad_ms: float


@dataclass(frozen=True)
class _InputEnded:
    pass


@dataclass(frozen=True)
class _Audio:
    audio: SpokenAudio
    record: TurnRecord


_WORD = re.compile(r"[a-z0-9']+")


class StageTimeout(Exception):
    """A stage took longer than ``stage_timeout_s``."""


def stream_with_timeout(
    make: Callable[[], Iterator[str]], timeout: float, name: str = "companion-llm-stream"
) -> Iterator[str]:
    """Iterate ``make()`` on a helper thread; raise :class:`StageTimeout` if a piece takes too long.

    A model that hangs then costs one stuck helper thread, not the whole loop.
    """
    try:
        yield from iterate_in_thread(make, name=name, timeout=timeout)
    except TimeoutError:
        raise StageTimeout(f"no reply from the language model in {timeout:g} s") from None


def strip_wake_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The request after a wake phrase at the start of ``text``; None if there is none.

    Matching ignores case and punctuation: "Hey, Rocky! What's up?" with the phrase
    "hey rocky" gives "What's up?".
    """
    words = [(m.group(0), m.end()) for m in _WORD.finditer(text.lower())]
    for phrase in sorted(phrases, key=len, reverse=True):
        want = _WORD.findall(phrase.lower())
        if want and [w for w, _ in words[: len(want)]] == want:
            rest = text[words[len(want) - 1][1] :]
            return rest.lstrip(" ,.!?;:-").strip()
    return None


class VoiceLoop:
    """The running conversation. Stages and devices are passed in."""

    def __init__(
        self,
        *,
        source: AudioSource,
        sink: AudioSink,
        detector: TurnDetector,
        stt: SpeechToText,
        chat: Chat,
        tts: Synthesizer,
        persona: Persona,
        listen: ListenSettings,
        options: LoopOptions | None = None,
        bus: EventBus | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.source, self.sink, self.detector = source, sink, detector
        self.stt, self.chat, self.tts = stt, chat, tts
        self.persona = persona
        self.listen = listen
        self.options = options or LoopOptions()
        self.bus = bus or EventBus()
        self.clock = clock
        self.state = State.IDLE
        self.turns_done = 0
        self._turn_no = 0
        self._turns: queue.Queue[Utterance | _InputEnded] = queue.Queue()
        self._speech: queue.Queue[_SpeakJob | _ReplyDone | _InputEnded] = queue.Queue()
        self._audio: queue.Queue[_Audio | _ReplyDone | _InputEnded] = queue.Queue()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait  # interruptible by stop()
        self._cut = threading.Event()
        self._speaking = threading.Event()
        self._deaf_until = 0.0
        self._muted = False
        self._ptt: bool | None = None  # None: no push-to-talk button
        self._release = False  # the talk button was just let go: end the turn now
        self._state_lock = threading.Lock()
        self._pending_persona: tuple[Persona, Synthesizer | None, bool] | None = None
        self._threads: list[threading.Thread] = []
        self.heartbeat: dict[str, float] = {}
        """Per-thread time of last progress; a hung stage stops updating its entry."""
        self.busy_since: dict[str, float | None] = {}
        """Per-thread start of the work in hand (None when waiting for work)."""
        self.error: BaseException | None = None
        self._in_flight = 0
        self._idle = threading.Condition()
        self._drafts: dict[tuple[float, float], Future[str]] = {}
        self._draft_pool: ThreadPoolExecutor | None = None

    # ---- control -------------------------------------------------------------------------

    def start(self) -> None:
        for name, target in (
            ("companion-play", self._play_loop),
            ("companion-voice", self._voice_loop),
            ("companion-think", self._think_loop),
            ("companion-listen", self._listen_loop),
        ):
            t = threading.Thread(target=self._guard(name, target), name=name, daemon=True)
            self._threads.append(t)
            self.heartbeat[name] = self.clock()
            self.busy_since[name] = None
            t.start()

    def run(self) -> None:
        """Run until the source ends (a recording) or :meth:`stop` is called."""
        self.start()
        self.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the loop to finish; True if it did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            t.join(remaining)
        return not any(t.is_alive() for t in self._threads)

    def stop(self, *, cut: bool = True) -> None:
        """Stop: input first, output last. ``cut`` drops replies not yet spoken."""
        self._stop.set()
        if cut:
            self._cut.set()
        self.source.close()
        self._turns.put(_InputEnded())
        with self._idle:
            self._idle.notify_all()

    def wait_idle(self) -> None:
        """Block until no turn is being answered (used to pace a recording in --fast mode)."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0 or self._stop.is_set())

    def _turn_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def _turn_ended(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def set_muted(self, muted: bool) -> None:
        """Mute button: stop (or resume) listening."""
        self._muted = muted
        if muted:
            self.detector.reset()
        _log.info("microphone %s", "muted" if muted else "listening")

    @property
    def muted(self) -> bool:
        return self._muted

    def enable_push_to_talk(self) -> None:
        """From now on only audio heard while the talk button is held counts."""
        if self._ptt is None:
            self._ptt = False

    def set_talk_button(self, held: bool) -> None:
        self.enable_push_to_talk()
        self._ptt = held
        if not held:
            self._release = True

    def set_persona(self, persona: Persona, tts: Synthesizer | None = None, *, keep_memory: bool = False) -> None:
        """Swap the persona (and its voice) between turns; applied before the next turn."""
        self._pending_persona = (persona, tts, keep_memory)

    def say(self, text: str, *, raw: bool = False, speed: float | None = None) -> TurnRecord:
        """Speak ``text`` in character as a reply of its own (greetings, the control API).

        ``raw`` skips the persona's style transform; ``speed`` overrides the voice's rate.
        Returns the turn's record, filled in as the reply is spoken.
        """
        from companion.sentences import split_sentences

        self._turn_no += 1
        self._turn_started()
        record = TurnRecord(turn=self._turn_no, persona=self.persona.name)
        self._queue_sentences(record, split_sentences(text), self.clock(), 0, raw=raw, speed=speed)
        self._speech.put(_ReplyDone(record, self.clock(), 0.0))
        return record

    # ---- plumbing ---------------------------------------------------------------------------

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # a bug in the loop itself: log it, end cleanly
                _log.exception("%s failed", name)
                self.error = exc
                self._set_state(State.ERROR)
                self.stop()
                self._speech.put(_InputEnded())
                self._audio.put(_InputEnded())

        return run

    def _beat(self, name: str, busy: bool | None = None) -> None:
        now = self.clock()
        self.heartbeat[name] = now
        if busy is True:
            self.busy_since[name] = now
        elif busy is False:
            self.busy_since[name] = None

    def hung_stages(self, now: float | None = None) -> list[str]:
        """Threads that have made no progress on their work for longer than the stage timeout."""
        now = self.clock() if now is None else now
        limit = self.options.stage_timeout_s
        return [n for n, since in self.busy_since.items() if since is not None and now - since > limit]

    def _set_state(self, state: State) -> None:
        with self._state_lock:
            if state == self.state:
                return
            previous, self.state = self.state, state
        self.bus.publish(StateChange(state, previous, self.persona.name))

    def _idle_state(self) -> State:
        return State.LISTENING if self.detector.in_speech else State.IDLE

    # ---- listen -----------------------------------------------------------------------------

    def _deaf(self) -> bool:
        if not (self.source.live and self.listen.ignore_while_speaking):
            return False
        return self._speaking.is_set() or self.clock() < self._deaf_until

    def _listen_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                break
            except (DeviceLost, NoAudioDeviceError) as exc:
                if self._stop.is_set():
                    break
                backoff = self.options.reconnect_backoff_s
                wait = backoff[min(failures, len(backoff) - 1)]
                failures += 1
                _log.warning("microphone lost (%s); trying again in %.1f s", exc, wait)
                self.detector.reset()
                self._set_state(State.ERROR)
                self._beat("companion-listen")
                if self._sleep(wait):
                    break
        if not self._stop.is_set():
            for utt in self.detector.flush():
                self._turn_started()
                self._turns.put(utt)
        self._turns.put(_InputEnded())

    def _listen(self) -> None:
        name = "companion-listen"
        was_in_speech = False
        recovered = self.state == State.ERROR
        for chunk in self.source.chunks():
            if recovered:
                recovered = False
                _log.info("microphone back; listening again")
                self._set_state(State.IDLE)
            self._beat(name)
            if self._stop.is_set():
                break
            if self._muted or self._deaf() or self._ptt is False:
                if self._release:
                    self._release = False
                    for utt in self.detector.flush():
                        self._turn_started()
                        self._turns.put(utt)
                elif self.detector.in_speech:
                    self.detector.reset()
                continue
            heard = self.detector.feed(chunk)
            draft = self.detector.take_draft()
            if draft is not None and self.options.speculative_stt:
                self._start_draft(draft)
            for utt in heard:
                _log.debug("turn heard: %.2f-%.2f s%s", utt.start_s, utt.end_s, " (cut)" if utt.cut else "")
                self._turn_started()
                self._turns.put(utt)
            if self.detector.in_speech != was_in_speech or heard:
                was_in_speech = self.detector.in_speech
                if self.state in (State.IDLE, State.LISTENING):
                    self._set_state(State.THINKING if heard else self._idle_state())

    def _start_draft(self, draft: Utterance) -> None:
        """Transcribe a turn that may be over, while the detector waits to be sure."""
        for key in [k for k in self._drafts if k[0] == draft.start_s]:
            self._drafts.pop(key).cancel()  # the user spoke again: the older draft is stale
        future = self._stt_pool().submit(self.stt.transcribe, draft.float32())
        future.add_done_callback(self._prefill_draft)
        self._drafts[(draft.start_s, draft.end_s)] = future

    def _prefill_draft(self, future: Future[str]) -> None:
        """The speculative transcript is in: have the LLM read it before the turn is confirmed."""
        if (
            not self.options.speculative_prefill
            or future.cancelled()
            or future.exception() is not None
            or not self._turns.empty()
        ):
            return
        text = future.result()
        if self.listen.mode == "wake":
            text = strip_wake_phrase(text, self._wake_phrases()) or ""
        if text.strip():
            try:
                self.chat.prefill(text, wait=False)
            except Exception:
                _log.debug("speculative prefill failed", exc_info=True)

    def _stt_pool(self) -> ThreadPoolExecutor:
        if self._draft_pool is None:
            self._draft_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-stt")
        return self._draft_pool

    def _transcribe(self, utt: Utterance) -> str:
        """The turn's text: its draft's when the turn ended where the draft did."""
        draft = self._drafts.pop((utt.start_s, utt.end_s), None)
        for key in [k for k in self._drafts if k[1] <= utt.end_s]:
            self._drafts.pop(key).cancel()
        if draft is None or draft.cancel():  # no draft, or it never started
            draft = self._stt_pool().submit(self.stt.transcribe, utt.float32())
        try:
            return draft.result(timeout=self.options.stage_timeout_s)
        except TimeoutError:
            raise StageTimeout(f"no transcript in {self.options.stage_timeout_s:g} s") from None

    # ---- think ------------------------------------------------------------------------------

    def _apply_pending_persona(self) -> None:
        pending, self._pending_persona = self._pending_persona, None
        if pending is None:
            return
        persona, tts, keep_memory = pending
        self.persona = persona
        if tts is not None:
            self.tts = tts
        prompt = PersonaPrompt(persona.system_prompt, tuple((e.user, e.assistant) for e in persona.examples))
        self.chat.reset(prompt, keep_memory=keep_memory)
        _log.info("persona is now %s", persona.name)

    def _wake_phrases(self) -> tuple[str, ...]:
        return (self.persona.name, *self.persona.wake_phrases, *self.listen.wake_phrases)

    def _think_loop(self) -> None:
        name = "companion-think"
        while True:
            item = self._turns.get()
            if isinstance(item, _InputEnded):
                break
            if self._cut.is_set():
                self._turn_ended()
                continue
            self._apply_pending_persona()
            self._beat(name, busy=True)
            try:
                if not self._answer(item):
                    self._turn_ended()
                if self._turns.empty() and not self._cut.is_set():
                    self._prefill()
            finally:
                self._beat(name, busy=False)
        self._speech.put(_InputEnded())

    def _answer(self, utt: Utterance) -> bool:
        """Answer one turn; False if there was nothing to answer."""
        clock = self.clock
        vad_ms = (utt.detected_s - utt.end_s) * 1000.0
        self._set_state(State.THINKING)
        record = TurnRecord(turn=self._turn_no + 1, speech_end_s=utt.end_s, persona=self.persona.name)
        record.timings_ms["vad"] = vad_ms
        t = clock()
        try:
            heard = self._transcribe(utt)
        except Exception as exc:
            _log.exception("speech-to-text failed")
            self._fail(record, utt, vad_ms, f"stt: {exc}")
            return True
        record.timings_ms["stt"] = (clock() - t) * 1000.0
        request = heard
        if self.listen.mode == "wake":
            after_wake = strip_wake_phrase(heard, self._wake_phrases()) if heard else None
            if after_wake is None:
                _log.info("not for me (no wake phrase): %r", heard)
                self._set_state(self._idle_state())
                return False
            request = after_wake or "Hello!"
        if not heard.strip():
            _log.info("heard nothing intelligible")
            self._set_state(self._idle_state())
            return False
        self._turn_no += 1
        record.turn = self._turn_no
        record.heard = heard
        self.bus.publish(Transcript(heard, utt))
        _log.info("heard: %s", heard)

        splitter = SentenceSplitter()
        sentences: list[str] = []
        t_llm = clock()
        stream = None
        try:
            stream = stream_with_timeout(lambda: self.chat.reply(request), self.options.stage_timeout_s)
            for piece in stream:
                self._beat("companion-think", busy=True)  # progress: not hung
                if "llm_first_token" not in record.timings_ms:
                    record.timings_ms["llm_first_token"] = (clock() - t_llm) * 1000.0
                done = splitter.feed(piece)
                if done:
                    done = done[: self.options.max_sentences - len(sentences)]
                    sentences += done
                    self._queue_sentences(record, done, t_llm, len(sentences) - len(done))
                if len(sentences) >= self.options.max_sentences or self._cut.is_set():
                    break
            else:
                rest = splitter.flush()
                self._queue_sentences(record, rest, t_llm, len(sentences))
                sentences += rest
        except Exception as exc:
            _log.exception("the language model failed")
            record.error = f"llm: {exc}"
            if not sentences:
                self._queue_sentences(record, [self.persona.fallback], t_llm, 0)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        sentences = sentences[: self.options.max_sentences]
        record.timings_ms["llm_total"] = (clock() - t_llm) * 1000.0
        if sentences:
            self.chat.remember_spoken(" ".join(sentences))
        if not sentences and record.error is None:
            record.error = "llm: empty reply"
            self._queue_sentences(record, [self.persona.fallback], t_llm, 0)
        self._speech.put(_ReplyDone(record, utt.detected_at, vad_ms))
        return True

    def _prefill(self) -> None:
        """While the user listens to the reply: prepare the LLM for the next turn."""
        try:
            self.chat.prefill()
        except Exception:
            _log.exception("preparing the language model for the next turn failed")

    def _fail(self, record: TurnRecord, utt: Utterance, vad_ms: float, error: str) -> None:
        self._turn_no += 1
        record.turn = self._turn_no
        record.error = error
        self._queue_sentences(record, [self.persona.fallback], self.clock(), 0)
        self._speech.put(_ReplyDone(record, utt.detected_at, vad_ms))

    def _queue_sentences(
        self,
        record: TurnRecord,
        texts: list[str],
        t_llm: float,
        first: int,
        *,
        raw: bool = False,
        speed: float | None = None,
    ) -> None:
        """Transform and queue sentences ``first``, ``first + 1``, ... of a reply."""
        for index, text in enumerate(texts, start=first):
            try:
                spoken = text if raw else self.persona.transform(text)
            except Exception:
                _log.exception("style transform failed on %r; speaking it plainly", text)
                spoken = text
            if not spoken.strip():
                spoken = text
            if index == 0 and "first_sentence" not in record.timings_ms:
                record.timings_ms["first_sentence"] = (self.clock() - t_llm) * 1000.0
            sentence = ReplySentence(record.turn, index, text, spoken)
            record.reply = f"{record.reply} {text}".strip()
            record.spoken = f"{record.spoken} {spoken}".strip()
            self.bus.publish(sentence)
            self._speech.put(_SpeakJob(sentence, record, self.clock(), speed))

    # ---- voice (TTS) ------------------------------------------------------------------------

    def _voice_loop(self) -> None:
        name = "companion-voice"
        while True:
            job = self._speech.get()
            if isinstance(job, _InputEnded):
                break
            if isinstance(job, _ReplyDone):
                self._audio.put(job)
                continue
            if self._cut.is_set():
                continue
            self._beat(name, busy=True)
            t = self.clock()
            try:
                for block in self.tts.synthesize(job.sentence.spoken, speed=job.speed):
                    if job.sentence.index == 0 and "tts_first_audio" not in job.record.timings_ms:
                        job.record.timings_ms["tts_first_audio"] = (self.clock() - t) * 1000.0
                    self._audio.put(
                        _Audio(
                            SpokenAudio(block, self.tts.sample_rate, job.record.turn, job.sentence.index), job.record
                        )
                    )
                    self._beat(name, busy=True)
                    if self._cut.is_set():
                        break
            except Exception as exc:
                _log.exception("text-to-speech failed on %r; skipping the sentence", job.sentence.spoken)
                job.record.error = job.record.error or f"tts: {exc}"
            finally:
                self._beat(name, busy=False)
        self._audio.put(_InputEnded())

    # ---- play -------------------------------------------------------------------------------

    def _play_loop(self) -> None:
        name = "companion-play"
        started: set[int] = set()
        first_heard: dict[int, float] = {}
        while True:
            item = self._audio.get()
            if isinstance(item, _InputEnded):
                break
            if isinstance(item, _ReplyDone):
                self._finish_turn(item, item.record.turn in started, first_heard.pop(item.record.turn, None))
                started.discard(item.record.turn)
                continue
            if self._cut.is_set():
                continue
            turn = item.record.turn
            self._beat(name, busy=True)
            try:
                if turn not in started:
                    started.add(turn)
                    self._speaking.set()
                    self.sink.begin(turn)
                    self._set_state(State.SPEAKING)
                delay = self.sink.write(item.audio)
                if turn not in first_heard:
                    first_heard[turn] = self.clock() + delay
                    item.record.timings_ms["playback_delay"] = delay * 1000.0
                self.bus.publish(PlaybackChunk(item.audio, delay))
            except Exception as exc:
                _log.exception("playback failed")
                item.record.error = item.record.error or f"playback: {exc}"
            finally:
                self._beat(name, busy=False)
        self.sink.close()
        if self._draft_pool is not None:
            self._draft_pool.shutdown(wait=False, cancel_futures=True)

    def _finish_turn(self, done: _ReplyDone, started: bool, heard_at: float | None) -> None:
        record = done.record
        if started:
            try:
                record.audio = self.sink.end(record.turn)
            except Exception as exc:
                _log.exception("finishing playback failed")
                record.error = record.error or f"playback: {exc}"
        if heard_at is not None and done.detected_at:
            record.timings_ms["response"] = done.vad_ms + (heard_at - done.detected_at) * 1000.0
        self._speaking.clear()
        self._deaf_until = self.clock() + self.listen.echo_tail_ms / 1000.0
        self.turns_done += 1
        if record.heard or record.spoken:
            _log.info("said: %s", record.spoken)
        self.bus.publish(TurnFinished(record))
        self._set_state(self._idle_state() if not self._stop.is_set() else State.IDLE)
        self._turn_ended()
