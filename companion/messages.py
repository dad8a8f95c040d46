"""The typed messages that flow through the voice loop.

mic -> :class:`AudioChunk` -> turn detector -> :class:`Utterance` -> STT ->
:class:`Transcript` -> LLM -> :class:`ReplySentence` -> TTS -> :class:`SpokenAudio`
-> speaker. :class:`StateChange` and :class:`TurnFinished` tell the rest of the robot
(eyes, logs, control API) what is happening.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


class State(enum.Enum):
    """What the robot is doing; the eyes and the service status show it."""

    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PersonaPrompt:
    """What the LLM is told about the character."""

    system: str
    examples: tuple[tuple[str, str], ...] = ()
    """Few-shot (user, assistant) exchanges."""
    memory: str = ""
    """What is remembered of the user (changes between conversations). A local model is
    told it after the examples, so the persona and examples before it stay in the KV
    cache (see :meth:`companion.llm_memory.ChatMemory.messages`)."""

    def with_memory_in_system(self) -> PersonaPrompt:
        """The same prompt with the memory at the end of the system message (one system message)."""
        if not self.memory:
            return self
        return PersonaPrompt(self.system + "\n" + self.memory, self.examples)


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A block of mono 16-bit microphone audio."""

    samples: Int16Array
    """Mono PCM samples."""
    rate: int
    """Sample rate in Hz."""
    start_s: float
    """Where the block starts on the source's own clock (seconds since the source opened)."""
    captured_at: float | None = None
    """Monotonic time at which its first sample was captured (a live microphone), for echo cancellation."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds


@dataclass(frozen=True, slots=True)
class Utterance:
    """One turn of user speech, cut out of the microphone stream by the turn detector."""

    samples: Int16Array
    """The speech, including pre-roll before the onset, mono 16-bit."""
    rate: int
    start_s: float
    """Where the kept audio starts on the source clock (onset minus pre-roll)."""
    end_s: float
    """Where the user stopped speaking (end of the last voiced frame), source clock."""
    detected_s: float
    """Source-clock time at which the detector decided the turn was over."""
    detected_at: float
    """Monotonic wall-clock time of that decision; timings are measured from it."""
    cut: bool = False
    """True when the turn hit the maximum length and was cut (the rest follows as a new turn)."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    def float32(self) -> Float32Array:
        return (self.samples.astype(np.float32) / 32768.0).astype(np.float32)


class HeardText(str):
    """A transcript that also says how sure the STT was of its last word.

    ``last_word_p``: the probability the STT gave the last word (its tokens' product),
    None when it cannot say. The end-of-turn policy reads it: a pause after a word the
    STT barely heard (a half-word it guessed at) is not taken as a finished turn. A
    plain ``str`` stands for "cannot say".
    """

    last_word_p: float | None

    def __new__(cls, text: str, last_word_p: float | None = None) -> HeardText:
        self = super().__new__(cls, text)
        self.last_word_p = last_word_p
        return self


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the user said."""

    text: str
    utterance: Utterance


@dataclass(frozen=True, slots=True)
class ReplySentence:
    """One sentence of the reply, as the LLM wrote it and as the persona says it."""

    turn: int
    index: int
    """0 for the first sentence of the reply."""
    text: str
    """As the LLM wrote it."""
    spoken: str
    """After the persona's style transform; what the TTS speaks."""


@dataclass(frozen=True, slots=True)
class SpokenAudio:
    """A block of synthesised speech on its way to the speaker."""

    samples: Float32Array
    """Mono float samples in [-1, 1]."""
    rate: int
    turn: int
    sentence: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


@dataclass(frozen=True, slots=True)
class StateChange:
    """The robot's state changed."""

    state: State
    previous: State
    persona: str


@dataclass(slots=True)
class TurnRecord:
    """Everything about one answered turn; one line of ``transcript.jsonl``."""

    turn: int
    heard: str = ""
    reply: str = ""
    spoken: str = ""
    audio: str = ""
    speech_end_s: float = 0.0
    persona: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False
    """The user spoke over the reply and it was cut short."""
    heard_reply: str = ""
    """When interrupted: the part of ``reply`` that was played before the cut."""

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "turn": self.turn,
            "heard": self.heard,
            "reply": self.reply,
            "spoken": self.spoken,
            "audio": self.audio,
            "speech_end_s": round(self.speech_end_s, 3),
            "persona": self.persona,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
        if self.error:
            out["error"] = self.error
        if self.interrupted:
            out["interrupted"] = True
            out["heard_reply"] = self.heard_reply
        return out


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """A turn's reply has been fully played (or the turn failed)."""

    record: TurnRecord


@dataclass(frozen=True, slots=True)
class PlaybackChunk:
    """A block of audio was handed to the speaker; ``delay_s`` until it is heard."""

    audio: SpokenAudio
    delay_s: float


Event = StateChange | TurnFinished | Transcript | ReplySentence | PlaybackChunk
