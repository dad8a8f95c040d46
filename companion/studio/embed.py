"""Speaker embeddings of speech segments, behind one small Protocol.

Two embedders: :class:`ResemblyzerEmbedder` (GE2E d-vectors; weights ship inside the
``resemblyzer`` wheel, needs torch) and :class:`MfccEmbedder` (MFCC statistics, numpy
only), the cheap baseline. ``scripts/studio_accuracy.py`` measures both on a synthetic
dialogue; resemblyzer is the default because it measured better (see README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from companion.errors import UserError
from companion.messages import Float32Array
from companion.voice.similarity import torch_threads

_log = logging.getLogger(__name__)

RATE = 16000
PARTIAL_S = 1.6
PARTIAL_HOP_S = 0.5


@dataclass(frozen=True)
class Embedding:
    whole: Float32Array
    """Unit vector for the whole segment."""
    partials: Float32Array
    """(n, dim) unit vectors of ``PARTIAL_S`` windows every ``PARTIAL_HOP_S`` (at least one row)."""


class Embedder(Protocol):
    name: str
    same_speaker: float
    """Average-linkage cosine above which two clusters are taken to be one speaker."""
    centred: bool
    """Subtract the mean embedding of the whole source before comparing (raw features)."""

    def embed(self, audio16k: Float32Array) -> Embedding: ...

    def windows(self, audio16k: Float32Array, win_s: float, hop_s: float) -> Float32Array:
        """(n, dim) unit vectors of ``win_s`` windows every ``hop_s`` (finer than the partials)."""
        ...


def _unit(x: npt.NDArray[Any]) -> Float32Array:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.asarray(x / np.maximum(norm, 1e-9), dtype=np.float32)


class ResemblyzerEmbedder:
    name = "resemblyzer"
    same_speaker = 0.72
    centred = False

    def __init__(self) -> None:
        try:
            import resemblyzer
        except ImportError as exc:
            raise UserError(
                f"resemblyzer embeddings need torch and resemblyzer (pip install --no-deps resemblyzer): {exc}"
            ) from exc
        self._preprocess = resemblyzer.preprocess_wav
        self._encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)

    def embed(self, audio16k: Float32Array) -> Embedding:
        wav = self._preprocess(np.asarray(audio16k, dtype=np.float32), source_sr=RATE)
        if wav.size < int(0.3 * RATE):
            wav = np.asarray(audio16k, dtype=np.float32)
        if wav.size < int(PARTIAL_S * RATE):  # resemblyzer pads short clips; give it one full window
            wav = np.pad(wav, (0, int(PARTIAL_S * RATE) - wav.size))
        with torch_threads():
            whole, partials, _ = self._encoder.embed_utterance(wav, return_partials=True, rate=1 / PARTIAL_HOP_S)
        return Embedding(_unit(whole), _unit(np.atleast_2d(partials)))

    def windows(self, audio16k: Float32Array, win_s: float, hop_s: float) -> Float32Array:
        import torch
        from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram

        mel = wav_to_mel_spectrogram(normalize_volume(np.asarray(audio16k, np.float32), -30, increase_only=True))
        win, hop = int(win_s * 100), int(hop_s * 100)  # mel frames are 10 ms
        if len(mel) < win:
            mel = np.pad(mel, ((0, win - len(mel)), (0, 0)))
        batch = np.stack([mel[s : s + win] for s in range(0, len(mel) - win + 1, hop)])
        with torch.no_grad(), torch_threads():
            out = self._encoder(torch.from_numpy(batch).to(self._encoder.device)).cpu().numpy()
        return _unit(out)


def _mel_filters(n_fft: int, n_mels: int, rate: int) -> npt.NDArray[np.float64]:
    def mel(f: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return 2595 * np.log10(1 + np.asarray(f, dtype=np.float64) / 700)

    edges = 700 * (10 ** (np.linspace(mel(60), mel(rate / 2 - 200), n_mels + 2) / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    fb = np.zeros((n_mels, bins.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i : i + 3]
        fb[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return fb


class MfccEmbedder:
    """Mean and spread of 20 MFCCs over voiced frames (numpy only): a cheap baseline."""

    name = "mfcc"
    same_speaker = 0.3
    centred = True
    _n_fft, _hop, _n_mels, _n_mfcc = 512, 160, 40, 20

    def __init__(self) -> None:
        self._fb = _mel_filters(self._n_fft, self._n_mels, RATE)
        k = np.arange(self._n_mels)
        self._dct = np.cos(np.pi / self._n_mels * (k[None, :] + 0.5) * np.arange(1, self._n_mfcc + 1)[:, None])

    def _mfcc(self, audio: Float32Array, keep_quiet: bool = False) -> npt.NDArray[np.float64]:
        if audio.size < self._n_fft:
            audio = np.pad(audio, (0, self._n_fft - audio.size))
        count = 1 + (audio.size - self._n_fft) // self._hop
        idx = np.arange(self._n_fft)[None, :] + self._hop * np.arange(count)[:, None]
        power = np.abs(np.fft.rfft(audio[idx] * np.hanning(self._n_fft), axis=1)) ** 2
        energy = power.sum(axis=1)
        keep = energy > np.percentile(energy, 40) if count > 10 and not keep_quiet else np.ones(count, bool)
        logmel = np.log(np.maximum(power[keep] @ self._fb.T, 1e-10))
        return logmel @ self._dct.T

    def _stats(self, mfcc: npt.NDArray[np.float64]) -> Float32Array:
        return _unit(np.concatenate([mfcc.mean(axis=0), mfcc.std(axis=0)]) / 10.0)

    def windows(self, audio16k: Float32Array, win_s: float, hop_s: float) -> Float32Array:
        mfcc = self._mfcc(np.asarray(audio16k, dtype=np.float32), keep_quiet=True)
        per_s = RATE / self._hop
        win, hop = int(win_s * per_s), int(hop_s * per_s)
        return np.stack([self._stats(mfcc[s : s + win]) for s in range(0, max(1, len(mfcc) - win + 1), hop)])

    def embed(self, audio16k: Float32Array) -> Embedding:
        mfcc = self._mfcc(np.asarray(audio16k, dtype=np.float32))
        per_s = RATE / self._hop
        win, hop = int(PARTIAL_S * per_s), int(PARTIAL_HOP_S * per_s)
        starts = range(0, max(1, len(mfcc) - win + 1), hop)
        partials = np.stack([self._stats(mfcc[s : s + win]) for s in starts])
        return Embedding(self._stats(mfcc), partials)


def make_embedder(name: str = "auto") -> Embedder:
    """``resemblyzer``, ``mfcc``, or ``auto`` (resemblyzer when it is installed, else mfcc with a warning)."""
    if name == "mfcc":
        return MfccEmbedder()
    if name == "resemblyzer":
        return ResemblyzerEmbedder()
    if name != "auto":
        raise UserError(f"unknown speaker embedding {name!r} (resemblyzer, mfcc, auto)")
    try:
        return ResemblyzerEmbedder()
    except UserError as exc:
        _log.warning("%s; falling back to MFCC statistics (less accurate)", exc)
        return MfccEmbedder()
