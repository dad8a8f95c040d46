"""The voice loop: hear a turn, understand it, answer in character, speak.

Four named workers, each owned by :class:`VoiceLoop` and ended by :meth:`stop`:

- ``companion-listen``: audio source -> echo cancellation -> turn detector -> think queue
- ``companion-think``:  STT -> wake check -> LLM stream -> sentences -> style -> speak queue
- ``companion-voice``:  TTS, sentence by sentence -> play queue
- ``companion-play``:   audio -> speaker; timings; turn finished

Shared state lives in one :class:`LoopState`. A failing stage is logged, the fallback
line is said and the loop goes on; a barge-in cancels the reply in every stage.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from companion.audio.echo_path import EchoPath
from companion.config import ListenSettings
from companion.loop.drafts import Drafts, answer_draft, likely_over, prefill_quietly
from companion.loop.jobs import AudioJob, InputEnded, PersonaJob, ReplyEnd, SayJob, SpeakJob, ThinkJob
from companion.loop.listen import ListenWorker
from companion.loop.options import LoopOptions
from companion.loop.play import PlayWorker
from companion.loop.speak import SpeakWorker
from companion.loop.state import Heartbeats, LoopState
from companion.loop.think import ThinkWorker
from companion.loop.wake import strip_wake_phrase
from companion.loop.workers import Workers
from companion.messages import State, TurnRecord, Utterance
from companion.persona import Persona
from companion.script import Script, prepare
from companion.stages import AudioSink, AudioSource, Chat, Clock, EventBus, SpeechToText, Synthesizer
from companion.turnend import EndOfTurn
from companion.vad import TurnDetector

_log = logging.getLogger(__name__)


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
        echo: EchoPath | None = None,
        end_of_turn: EndOfTurn | None = None,
    ) -> None:
        self.source, self.sink, self.detector = source, sink, detector
        self.stt, self.chat = stt, chat
        self.listen = listen
        self.options = options or LoopOptions()
        self.bus = bus or EventBus()
        self.clock = clock
        self.echo = echo
        self.end_of_turn = end_of_turn
        """Decides from a draft transcript how much silence ends the turn (a hinted detector)."""
        self._stop = threading.Event()
        self._cut = threading.Event()
        self._sleep = sleep or self._stop.wait  # interruptible by stop()
        self.turns_done = 0
        self.error: BaseException | None = None
        self._turns: queue.Queue[ThinkJob] = queue.Queue()
        self._speech: queue.Queue[SpeakJob | ReplyEnd | InputEnded] = queue.Queue()
        self._audio: queue.Queue[AudioJob | ReplyEnd | InputEnded] = queue.Queue()
        self.beats = Heartbeats(clock)
        self._workers = Workers(self.beats, self._crashed)
        self.drafts = Drafts(lambda: self.stt)
        self._think = ThinkWorker(
            chat=chat,
            tts=tts,
            persona=persona,
            state=LoopState(self.bus, clock, lambda: self._think.persona.name),
            beats=self.beats,
            drafts=self.drafts,
            bus=self.bus,
            clock=clock,
            inbox=self._turns,
            speech=self._speech,
            listen=listen,
            max_sentences=self.options.max_sentences,
            stage_timeout_s=self.options.stage_timeout_s,
            cancelled=self._cut.is_set,
            first_clause=lambda: self.options.first_clause,
        )
        self.state_ = self._think.state
        self._listen = ListenWorker(
            source=source,
            detector=detector,
            state=self.state_,
            beats=self.beats,
            drafts=self.drafts,
            turns=self._turns,
            listen=listen,
            options=lambda: self.options,
            echo=echo,
            on_barge_in=self.interrupt,
            on_pause=self._pause_voice,
            on_draft=self._draft_heard,
            sleep=lambda s: self._sleep(s),
            stop=self._stop,
        )

    # ---- what others read -----------------------------------------------------------

    @property
    def state(self) -> State:
        return self.state_.state

    @property
    def persona(self) -> Persona:
        return self._think.persona

    @property
    def tts(self) -> Synthesizer:
        return self._think.tts

    def hung_stages(self, now: float | None = None) -> list[str]:
        """Workers that have made no progress on their work for longer than the stage timeout."""
        return self.beats.hung(self.options.stage_timeout_s, now)

    @property
    def running(self) -> bool:
        return self._workers.running

    # ---- control ----------------------------------------------------------------------

    def start(self) -> None:
        self._listen.source = self.source  # tests may swap the source before starting
        if self.options.greet and self.persona.greeting:
            self.say(self.persona.greeting)
        play = PlayWorker(
            inbox=self._audio,
            sink=self.sink,
            state=self.state_,
            beats=self.beats,
            bus=self.bus,
            clock=self.clock,
            echo_tail_s=self.listen.echo_tail_ms / 1000.0,
            cancelled=self._cut.is_set,
            idle_state=lambda: State.LISTENING if self.detector.in_speech else State.IDLE,
            on_finished=self._count_turn,
        )
        speak = SpeakWorker(
            inbox=self._speech, audio=self._audio, beats=self.beats, clock=self.clock, cancelled=self._cut.is_set
        )
        self._workers.start(
            [
                ("companion-play", play.run),
                ("companion-voice", speak.run),
                ("companion-think", self._think.run),
                ("companion-listen", self._listen.run),
            ],
            last=self.drafts.close,
        )

    def run(self) -> None:
        """Run until the source ends (a recording) or :meth:`stop` is called."""
        self.start()
        self.wait()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the loop to finish; True if it did."""
        return self._workers.wait(timeout)

    def stop(self, *, cut: bool = True) -> None:
        """Stop: input first, output last. ``cut`` drops replies not yet spoken and fades the voice out."""
        self._stop.set()
        self.state_.stopping.set()
        if cut:
            self._cut.set()
            self._fade()
        self.source.close()
        self._turns.put(InputEnded())
        self.state_.wake_waiters()
        self.state_.release()  # a reply held for a user who went on talking

    def wait_idle(self) -> None:
        """Block until no turn is being answered (used to pace a recording in --fast mode)."""
        self.state_.wait_idle()

    def interrupt(self) -> bool:
        """Barge-in: stop the reply being spoken now; True if there was one."""
        reply = self.state_.interrupt()
        if reply is None:
            return False
        self._fade()
        self.state_.set(State.LISTENING)
        return True

    def _pause_voice(self, paused: bool) -> None:
        """Hold the robot's voice (a voice over it may interrupt it), or let it go on."""
        if (pause := getattr(self.sink, "pause", None)) is not None:
            pause(paused, self.options.fade_ms / 1000.0)

    def _fade(self) -> None:
        if (fade := getattr(self.sink, "fade_out", None)) is not None:
            fade(self.options.fade_ms / 1000.0)

    def set_muted(self, muted: bool) -> None:
        """Mute button: stop (or resume) listening."""
        self._listen.set_muted(muted)

    @property
    def muted(self) -> bool:
        return self._listen.muted

    def enable_push_to_talk(self) -> None:
        """From now on only audio heard while the talk button is held counts."""
        self._listen.enable_push_to_talk()

    def set_talk_button(self, held: bool) -> None:
        self._listen.set_talk_button(held)

    def set_persona(self, persona: Persona, tts: Synthesizer | None = None, *, keep_memory: bool = False) -> None:
        """Swap the persona (and its voice) before the next turn."""
        self._turns.put(PersonaJob(persona, tts, keep_memory))

    def say(self, text: str | Script, *, raw: bool = False, speed: float | None = None) -> TurnRecord:
        """Speak ``text`` in character as a reply of its own, queued behind the turn being answered
        (``raw``: no style transform; ``speed``: the voice's rate). Its record fills in as it plays."""
        script = text if isinstance(text, Script) else prepare(self.persona, text, raw=raw)
        job = SayJob.of(script, self.state_, self.persona.name, speed)
        self._turns.put(job)
        return job.record

    # ---- plumbing ---------------------------------------------------------------------

    def _count_turn(self) -> None:
        self.turns_done += 1

    def _draft_heard(self, draft: Utterance, future: Future[str]) -> None:
        """A draft's transcript is in (on the STT thread): how long to wait, then maybe prefill."""
        text, hold = answer_draft(self.detector, self.end_of_turn, draft, future)
        if self.options.speculative_prefill and text and self._turns.empty() and likely_over(hold, self.detector):
            if self.listen.mode == "wake":
                text = strip_wake_phrase(text, self._think.wake_phrases()) or ""
            prefill_quietly(self.chat, text)

    def _crashed(self, name: str, exc: BaseException) -> None:
        self.error = exc
        self.state_.set(State.ERROR)
        self.stop()
        self._speech.put(InputEnded())
        self._audio.put(InputEnded())
