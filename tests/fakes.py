"""Small fakes for the loop's seams (fault injection and ordering), not for behaviour."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np

from companion.messages import AudioChunk, PersonaPrompt, SpokenAudio


class ListSource:
    """Audio chunks from a list, as fast as they are taken."""

    def __init__(self, chunks: list[AudioChunk], *, live: bool = False, gate: Callable[[int], None] | None = None):
        self.chunks_ = chunks
        self.live = live
        self.rate = 16000
        self.gate = gate
        self._closed = threading.Event()

    def chunks(self) -> Iterator[AudioChunk]:
        for i, c in enumerate(self.chunks_):
            if self._closed.is_set():
                return
            if self.gate:
                self.gate(i)
            yield c

    def close(self) -> None:
        self._closed.set()


def speech_pattern(pattern: str, frame: int = 480) -> tuple[list[AudioChunk], str]:
    """Chunks of silence/loud noise following a '#'/'_' pattern of 30 ms frames."""
    rng = np.random.default_rng(1)
    chunks = []
    for i, ch in enumerate(pattern):
        level = 8000 if ch == "#" else 0
        samples = (rng.standard_normal(frame) * level).astype(np.int16)
        chunks.append(AudioChunk(samples, 16000, i * frame / 16000))
    return chunks, pattern


class PatternVad:
    """Frame classifier: loud frames are speech."""

    def is_speech(self, frame: bytes, rate: int) -> bool:
        return bool(np.abs(np.frombuffer(frame, dtype=np.int16)).mean() > 1000)


class ScriptSTT:
    def __init__(self, texts: list[str | Exception]):
        self.texts = list(texts)
        self.calls = 0

    def transcribe(self, audio) -> str:
        self.calls += 1
        item = self.texts.pop(0) if self.texts else "something"
        if isinstance(item, Exception):
            raise item
        return item


class ScriptChat:
    """Replies from a script; an Exception item raises; a callable item is called mid-reply."""

    def __init__(self, replies: list[object]):
        self.replies = list(replies)
        self.prompts: list[PersonaPrompt | None] = []
        self.heard: list[str] = []
        self.events: list[str] = []

    def reply(self, text: str) -> Iterator[str]:
        self.heard.append(text)
        item = self.replies.pop(0) if self.replies else "Okay."
        if isinstance(item, Exception):
            raise item
        parts = item if isinstance(item, list) else [item]
        for part in parts:
            if callable(part):
                part()
                continue
            for word in str(part).split(" "):
                yield word + " "
        self.events.append("llm done")

    def remember_spoken(self, spoken_reply: str) -> None:
        self.events.append(f"remember: {spoken_reply}")

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        self.events.append(f"prefill: {user}" if user else "prefill")

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        self.prompts.append(prompt)


class ToneTTS:
    """A tone per sentence; records what it was asked to say; can be told to fail."""

    sample_rate = 16000

    def __init__(self, fail_on: str | None = None, events: list[str] | None = None):
        self.said: list[str] = []
        self.fail_on = fail_on
        self.events = events if events is not None else []
        self.started = threading.Event()

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[np.ndarray]:
        self.events.append(f"tts start: {text}")
        self.started.set()
        if self.fail_on and self.fail_on in text:
            raise RuntimeError("synthesis exploded")
        self.said.append(text)
        t = np.arange(1600) / 16000
        yield (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


class MemorySink:
    def __init__(self) -> None:
        self.replies: dict[int, list[SpokenAudio]] = {}
        self.events: list[str] = []

    def begin(self, turn: int) -> None:
        self.events.append(f"begin {turn}")
        self.replies[turn] = []

    def write(self, audio: SpokenAudio) -> float:
        self.replies[audio.turn].append(audio)
        return 0.01

    def end(self, turn: int) -> str:
        self.events.append(f"end {turn}")
        return f"turn-{turn:03d}.wav"

    def close(self) -> None:
        self.events.append("close")


class PacedSink(MemorySink):
    """Plays in real time (sleeps for the audio's length) and can be faded out like the speaker."""

    def __init__(self) -> None:
        super().__init__()
        self.playing = threading.Event()
        self.faded = threading.Event()
        self._cut = False

    def begin(self, turn: int) -> None:
        self._cut = False
        super().begin(turn)

    def write(self, audio: SpokenAudio) -> float:
        if self._cut:
            return 0.0
        self.replies[audio.turn].append(audio)
        self.playing.set()
        self.faded.wait(audio.seconds)  # "playing": returns at once if faded out meanwhile
        return 0.0

    def pause(self, paused: bool, seconds: float = 0.03) -> None:
        self.events.append("pause" if paused else "go on")

    def fade_out(self, seconds: float = 0.03) -> None:
        self.events.append("fade")
        self._cut = True
        self.faded.set()

    def end(self, turn: int) -> str:
        self.playing.clear()
        self.faded.clear()
        return super().end(turn)
