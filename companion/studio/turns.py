"""Splitting segments that hold two speakers (a turn with no pause, or two voices at once).

VAD cuts at pauses; a reply that starts before the other speaker has finished leaves one
segment with two voices. Such segments (flagged by :func:`~companion.studio.speakers.assign`)
are embedded again in short windows; each window is labelled with its nearest speaker,
and where the label changes for good the segment is cut in three: the first speaker, a
short zone around the change (flagged ``overlap``), and the second speaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from companion.messages import Float32Array
from companion.studio.embed import Embedder

WIN_S = 0.8
HOP_S = 0.2
MIN_RUN = 5
"""Windows in a row (1.6 s of audio) a speaker must hold to count as a turn."""


@dataclass(frozen=True)
class Piece:
    start_s: float
    end_s: float
    """Relative to the segment's start."""
    zone: bool
    """The change-over between two speakers (possibly both at once)."""


def _mode_filter(labels: npt.NDArray[np.int64], width: int = 3) -> npt.NDArray[np.int64]:
    out = labels.copy()
    half = width // 2
    for i in range(labels.size):
        window = labels[max(0, i - half) : i + half + 1]
        out[i] = np.bincount(window).argmax()
    return out


def split_turns(
    audio16k: Float32Array,
    embedder: Embedder,
    centroids: Float32Array,
    shift: Float32Array | None = None,
) -> list[Piece]:
    """The pieces of one segment (a single piece when it holds only one speaker)."""
    duration = audio16k.size / 16000
    whole = [Piece(0.0, duration, False)]
    if duration < 2 * WIN_S + 0.5 or len(centroids) < 2:
        return whole
    vectors = embedder.windows(audio16k, WIN_S, HOP_S)
    if shift is not None:
        vectors = vectors - shift
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    labels = _mode_filter(np.argmax(vectors @ centroids.T, axis=1))
    edges = np.flatnonzero(np.diff(labels)) + 1
    bounds = [0, *edges.tolist(), labels.size]
    runs = [(a, b) for a, b in pairwise(bounds) if b - a >= MIN_RUN]
    kept = [r for i, r in enumerate(runs) if i == 0 or labels[r[0]] != labels[runs[i - 1][0]]]
    if len(kept) < 2:
        return whole
    pieces: list[Piece] = []
    at = 0.0
    for (_a, last), (first, _b) in pairwise(kept):
        zone_start = first * HOP_S  # the first window that is all the next speaker...
        zone_end = (last - 1) * HOP_S + WIN_S  # ...and the end of the last that is all the previous one
        lo, hi = sorted((zone_start, zone_end))
        lo, hi = max(lo, at), min(hi, duration)
        if hi - lo < 0.2:
            lo, hi = max(at, lo - 0.1), min(duration, hi + 0.1)
        pieces += [Piece(at, lo, False), Piece(lo, hi, True)]
        at = hi
    pieces.append(Piece(at, duration, False))
    return [p for p in pieces if p.end_s - p.start_s >= 0.15]
