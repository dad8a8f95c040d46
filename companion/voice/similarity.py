"""How close a voice is to a reference speaker: cosine similarity of speaker embeddings.

Uses ``resemblyzer`` (its GE2E weights ship inside the package; it needs torch and
librosa). Install it with ``pip install --no-deps resemblyzer``: its metadata asks for
the ``typing`` backport and ``webrtcvad``, which ``webrtcvad-wheels`` already provides.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from companion.errors import UserError
from companion.messages import Float32Array

SENTENCES = (
    "Hello there, it is good to finally meet you.",
    "I think the weather will be much better tomorrow.",
    "Can you hand me that small blue box on the table?",
    "We need to leave before the sun goes down.",
    "My favourite thing in the whole world is a long quiet walk.",
    "Please remember to water the plants on Friday.",
    "That was the strangest noise I have ever heard!",
    "How many stars do you think are out there tonight?",
    "The engine is running, but something still sounds wrong.",
    "Thank you, friend, I will never forget this.",
)
"""The standard sentence set spoken by ``companion voice test`` and the similarity benchmark."""


def _load_resemblyzer() -> Any:
    try:
        import resemblyzer
    except ImportError as exc:
        raise UserError(
            "speaker similarity needs resemblyzer and torch: pip install --no-deps resemblyzer "
            f"(plus torch and librosa, e.g. from the xtts extra) [{exc}]"
        ) from exc
    return resemblyzer


@contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run torch on ``n`` threads, then restore. On a busy 2-core machine torch's default
    (one spinning OpenMP thread per core) made an embedding 30x slower than one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class SpeakerSimilarity:
    """Speaker embeddings (256-d, unit length) and their cosine similarity."""

    def __init__(self) -> None:
        resemblyzer = _load_resemblyzer()
        self._preprocess = resemblyzer.preprocess_wav
        self._encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)

    def embed(self, audio: Float32Array, sample_rate: int) -> Float32Array:
        wav = self._preprocess(np.asarray(audio, dtype=np.float32), source_sr=sample_rate)
        if wav.size < 1600:
            raise UserError("too little speech to compare voices (under 0.1 s after trimming silence)")
        with torch_threads():
            return np.asarray(self._encoder.embed_utterance(wav), dtype=np.float32)

    def embed_many(self, clips: Iterable[tuple[Float32Array, int]]) -> Float32Array:
        """One embedding for several clips of the same speaker (mean, renormalised)."""
        embeds = np.stack([self.embed(audio, rate) for audio, rate in clips])
        mean = embeds.mean(axis=0)
        return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)

    @staticmethod
    def cosine(a: Float32Array, b: Float32Array) -> float:
        return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
