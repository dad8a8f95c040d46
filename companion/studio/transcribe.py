"""Transcripts of many short segments with faster-whisper, packed into ~25 s windows.

Whisper always looks at 30 s of audio, so transcribing a 2 s segment costs as much as a
30 s one. Segments are therefore laid end to end with short silences between them,
transcribed with word timestamps, and each word goes back to the segment it falls in.
The model is found as the rest of companion finds it (:func:`companion.stt.resolve_model`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from companion.config import SttSettings
from companion.errors import ModelError
from companion.messages import Float32Array

_log = logging.getLogger(__name__)

RATE = 16000
WINDOW_S = 25.0
GAP_S = 0.6


def load_model(settings: SttSettings) -> Any:
    from faster_whisper import WhisperModel

    from companion.stt import resolve_model

    name = resolve_model(settings.model)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    try:
        return WhisperModel(name, device="cpu", compute_type=settings.compute_type, cpu_threads=settings.threads)
    except Exception as exc:  # ctranslate2 / hub errors come in many types
        raise ModelError(f"cannot load speech model {name!r}: {exc}") from exc


def pack(clips: Sequence[Float32Array]) -> list[tuple[Float32Array, list[tuple[int, float, float]]]]:
    """Windows of audio, each with (clip index, start_s, end_s) of the clips laid into it."""
    windows: list[tuple[Float32Array, list[tuple[int, float, float]]]] = []
    parts: list[Float32Array] = []
    spans: list[tuple[int, float, float]] = []
    at = 0.0
    gap = np.zeros(int(GAP_S * RATE), np.float32)
    for i, clip in enumerate(clips):
        clip = clip[: int(WINDOW_S * RATE)]
        length = clip.size / RATE
        if spans and at + length > WINDOW_S:
            windows.append((np.concatenate(parts), spans))
            parts, spans, at = [], [], 0.0
        parts += [gap, clip] if parts else [clip]
        at += GAP_S if spans else 0.0
        spans.append((i, at, at + length))
        at += length
    if spans:
        windows.append((np.concatenate(parts), spans))
    return windows


def transcribe_all(
    model: Any, clips: Sequence[Float32Array], settings: SttSettings, on_window: Callable[[int], None] | None = None
) -> list[str]:
    """One transcript per clip ('' where nothing was said)."""
    words: list[list[str]] = [[] for _ in clips]
    done = 0
    for audio, spans in pack(clips):
        segments, _info = model.transcribe(
            audio,
            language=settings.language,
            beam_size=settings.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
        )
        for seg in segments:
            if seg.no_speech_prob > 0.8:
                continue
            for word in seg.words or ():
                mid = (word.start + word.end) / 2
                near = min(spans, key=lambda s: 0.0 if s[1] <= mid <= s[2] else min(abs(mid - s[1]), abs(mid - s[2])))
                words[near[0]].append(word.word.strip())
        done += len(spans)
        if on_window is not None:
            on_window(done)
    return [" ".join(w for w in ws if w) for ws in words]
