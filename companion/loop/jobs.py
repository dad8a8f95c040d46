"""The typed messages between the loop's own workers (never string sentinels)."""

from __future__ import annotations

from dataclasses import dataclass

from companion.loop.state import LoopState, Reply
from companion.messages import ReplySentence, SpokenAudio, TurnRecord, Utterance
from companion.persona import Persona
from companion.script import Script
from companion.stages import Synthesizer


@dataclass(frozen=True)
class SayJob:
    """Say a text in character as a reply of its own (greeting, the control API)."""

    script: Script
    record: TurnRecord
    speed: float | None = None

    @classmethod
    def of(cls, script: Script, state: LoopState, persona: str, speed: float | None) -> SayJob:
        """A new turn for ``script``, its record filled in as it is spoken."""
        record = TurnRecord(turn=state.next_turn(), persona=persona)
        record.reply, record.spoken = script.text, script.spoken_text
        state.turn_started()
        return cls(script, record, speed)


@dataclass(frozen=True)
class PersonaJob:
    """Become another persona (and voice) before the next turn."""

    persona: Persona
    tts: Synthesizer | None
    keep_memory: bool


@dataclass(frozen=True)
class InputEnded:
    """No more work will come down this queue."""


ThinkJob = Utterance | SayJob | PersonaJob | InputEnded


@dataclass(frozen=True)
class SpeakJob:
    """One sentence to synthesise."""

    sentence: ReplySentence
    reply: Reply
    queued_at: float


@dataclass(frozen=True)
class ReplyEnd:
    """The last sentence of ``reply`` has been handed on."""

    reply: Reply
    detected_at: float
    """Monotonic time the user's turn was declared over (0 for a reply nobody asked for)."""
    vad_ms: float


@dataclass(frozen=True)
class AudioJob:
    """A block of synthesised speech for the speaker."""

    audio: SpokenAudio
    reply: Reply
