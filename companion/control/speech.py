"""Saying a text outside a conversation: transform, synthesize to WAV, or stream to a sink.

Shared by ``companion say`` (cold, in-process) and the control API backends. What
the persona says comes from :mod:`companion.script`, the loop's own path; it is
spoken sentence by sentence, so long input starts playing after its first sentence.
"""

from __future__ import annotations

import io
import logging
import threading
import wave
from collections.abc import Iterator

import numpy as np

from companion.audio.io import to_int16
from companion.control.backend import ApiError, Synthesized
from companion.messages import Float32Array, SpokenAudio
from companion.persona import Persona
from companion.script import prepare
from companion.stages import AudioSink, Synthesizer
from companion.worker import iterate_in_thread

_log = logging.getLogger(__name__)


def synthesize_all(synth: Synthesizer, sentences: tuple[str, ...], speed: float | None = None) -> Float32Array:
    blocks = [block for s in sentences for block in synth.synthesize(s, speed=speed)]
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks).astype(np.float32, copy=False)


def wav_bytes(samples: Float32Array, rate: int) -> bytes:
    """16-bit mono WAV file contents."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(samples).tobytes())
    return buf.getvalue()


def stream_blocks(
    synth: Synthesizer, sentences: tuple[str, ...], speed: float | None = None, *, ahead: int = 64
) -> Iterator[tuple[int, Float32Array]]:
    """(sentence index, audio block) as synthesized by a helper thread running ahead of the reader.

    The reader plays block ``n`` while the helper synthesizes the next sentence, so
    a slow sink write never leaves the speaker waiting on synthesis.
    """

    def blocks() -> Iterator[tuple[int, Float32Array]]:
        for i, sentence in enumerate(sentences):
            for block in synth.synthesize(sentence, speed=speed):
                yield i, block

    return iterate_in_thread(blocks, name="companion-say-tts", ahead=ahead)


def play(
    synth: Synthesizer, sentences: tuple[str, ...], sink: AudioSink, *, speed: float | None = None, turn: int = 1
) -> float:
    """Speak ``sentences`` on ``sink`` (streaming) and wait until heard; the seconds of audio played."""
    seconds = 0.0
    sink.begin(turn)
    try:
        for index, block in stream_blocks(synth, sentences, speed):
            sink.write(SpokenAudio(block, synth.sample_rate, turn, index))
            seconds += len(block) / synth.sample_rate
    finally:
        sink.end(turn)
    return seconds


def render(
    persona: Persona, synth: Synthesizer, text: str, *, speed: float | None = None, raw: bool = False
) -> Synthesized:
    """``text`` said by ``persona`` as a complete WAV file (for ``-o`` and ``POST /say``)."""
    script = prepare(persona, text, raw=raw)
    if not script.written:
        raise ApiError(400, "nothing to say: the text has no words")
    audio = synthesize_all(synth, script.spoken, speed)
    if audio.size == 0:
        raise ApiError(400, "nothing to say: the voice has no sounds for this text (another script?)")
    return Synthesized(wav_bytes(audio, synth.sample_rate), script.spoken_text, persona.name, script.changed)


class SerializedSynthesizer:
    """A synthesizer shared by request threads: one sentence is synthesized at a time."""

    def __init__(self, inner: Synthesizer, lock: threading.Lock | None = None) -> None:
        self.inner = inner
        self.lock = lock or threading.Lock()
        self.sample_rate: int = inner.sample_rate

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        with self.lock:
            blocks = list(self.inner.synthesize(text, speed=speed))
        yield from blocks
