"""Who speaks in each segment: clustering embeddings into speakers, ranking them against
target clips, and spotting segments that hold two voices.

Clustering is average-linkage agglomerative on cosine similarity, stopped at the
embedder's ``same_speaker`` threshold, then refined by reassigning every segment to its
nearest speaker centroid. A segment is flagged ``overlap`` when some of its 1.6 s windows
sound more like another speaker than like its own (two voices at once, or a turn change
with no pause to cut at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from companion.messages import Float32Array
from companion.studio.embed import Embedding

MAX_CLUSTERED = 3000
"""Segments clustered exactly (O(n^2) memory); the rest are assigned to the nearest speaker."""


@dataclass(frozen=True)
class SpeakerOptions:
    same_speaker: float
    target_min: float = 0.55
    """A speaker closer than this (cosine of centroids) to the --target clips is the target."""
    overlap_margin: float = 0.04
    """A window this much closer to another speaker than to its own flags ``overlap``."""
    min_speaker_s: float = 4.0
    """Clusters with less speech are folded into their nearest bigger speaker..."""
    fold_min: float = 0.6
    """...if they are at least this similar to it."""


@dataclass(frozen=True)
class Assignment:
    labels: list[str]
    """Speaker per segment: "target", "S1", "S2", ... (S1 has the most speech)."""
    scores: list[float]
    overlap: list[bool]
    centroids: dict[str, Float32Array]


def _unit(x: npt.NDArray[np.float32]) -> Float32Array:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9), dtype=np.float32)


def agglomerate(vectors: Float32Array, threshold: float) -> npt.NDArray[np.int64]:
    """Average-linkage clusters of unit ``vectors`` (cluster index per row)."""
    n = len(vectors)
    if n == 0:
        return np.zeros(0, np.int64)
    sim = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(sim, -np.inf)
    sizes = np.ones(n)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, bool)
    while alive.sum() > 1:
        flat = int(np.argmax(sim))
        a, b = divmod(flat, n)
        if sim[a, b] < threshold:
            break
        merged = (sizes[a] * sim[a] + sizes[b] * sim[b]) / (sizes[a] + sizes[b])
        sim[a], sim[:, a] = merged, merged
        sim[a, a] = -np.inf
        sim[b], sim[:, b] = -np.inf, -np.inf
        sizes[a] += sizes[b]
        members[a].extend(members[b])
        members[b] = []
        alive[b] = False
    labels = np.zeros(n, np.int64)
    for k, group in enumerate(g for g in members if g):
        labels[group] = k
    return labels


def _centroids(vectors: Float32Array, labels: npt.NDArray[np.int64]) -> Float32Array:
    return _unit(np.stack([vectors[labels == k].mean(axis=0) for k in range(int(labels.max()) + 1)]))


def assign(
    embeddings: Sequence[Embedding],
    durations: Sequence[float],
    opts: SpeakerOptions,
    *,
    target: Float32Array | None = None,
    centre: Float32Array | None = None,
    reliable: Sequence[bool] | None = None,
) -> Assignment:
    """Speakers of the segments; with ``target``, the speaker nearest it is called "target"."""
    if not embeddings:
        return Assignment([], [], [], {})
    shift = centre if centre is not None else np.zeros_like(embeddings[0].whole)
    whole = _unit(np.stack([e.whole for e in embeddings]) - shift)
    dur = np.asarray(durations, dtype=np.float64)
    use = np.asarray(reliable if reliable is not None else [True] * len(embeddings), bool)
    if use.sum() < 2:
        use[:] = True
    idx = np.flatnonzero(use)[:MAX_CLUSTERED]
    labels = np.full(len(embeddings), -1, np.int64)
    labels[idx] = agglomerate(whole[idx], opts.same_speaker)
    # fold speakers with too little speech into the nearest big one, then refine by nearest centroid
    cents = _centroids(whole[idx], labels[idx])
    talk = np.array([dur[idx][labels[idx] == k].sum() for k in range(len(cents))])
    big = talk >= min(opts.min_speaker_s, talk.max())
    near = (cents @ cents[big].T).max(axis=1)  # a small cluster unlike every big one is a speaker of its own
    cents = cents[big | (near < opts.fold_min)]
    for _ in range(3):
        labels = np.argmax(whole @ cents.T, axis=1)
        cents = _unit(
            np.stack([whole[labels == k].mean(axis=0) if (labels == k).any() else cents[k] for k in range(len(cents))])
        )
    order = np.argsort([-dur[labels == k].sum() for k in range(len(cents))])
    names = {int(k): f"S{rank + 1}" for rank, k in enumerate(order)}
    if target is not None:
        t = _unit(np.asarray(target, np.float32) - shift)
        near = int(np.argmax(cents @ t))
        if float(cents[near] @ t) >= opts.target_min:
            names[near] = "target"
        scores = [float(v) for v in whole @ t]
    else:
        scores = [float(whole[i] @ cents[labels[i]]) for i in range(len(whole))]
    overlap = []
    for i, emb in enumerate(embeddings):
        parts = _unit(emb.partials - shift) @ cents.T  # (windows, speakers)
        own = parts[:, labels[i]]
        others = np.delete(parts, labels[i], axis=1)
        overlap.append(bool(others.size and np.max(others.max(axis=1) - own) > opts.overlap_margin))
    return Assignment(
        [names[int(k)] for k in labels],
        scores,
        overlap,
        {names[k]: cents[k] for k in range(len(cents))},
    )
