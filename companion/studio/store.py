"""The embeddings cache of a workspace (``embeddings.npz``): ragged partials stored flat with offsets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from companion.studio.embed import Embedding
from companion.voice.cache import atomic_write


def save_embeddings(path: Path, embedder: str, embeddings: dict[str, Embedding]) -> None:
    ids = sorted(embeddings)
    counts = np.array([len(embeddings[i].partials) for i in ids], np.int64)
    buf = io.BytesIO()
    np.savez(
        buf,
        embedder=np.array(embedder),
        ids=np.array(ids),
        whole=np.stack([embeddings[i].whole for i in ids]),
        partials=np.concatenate([embeddings[i].partials for i in ids]),
        counts=counts,
    )
    atomic_write(path, buf.getvalue())


def load_embeddings(path: Path, embedder: str) -> dict[str, Embedding]:
    """The cached embeddings made by ``embedder`` (empty if none, or made by another embedder)."""
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["embedder"]) != embedder:
                return {}
            ids, whole, partials, counts = data["ids"], data["whole"], data["partials"], data["counts"]
    except (OSError, ValueError, KeyError):
        return {}
    ends = np.cumsum(counts)
    return {str(i): Embedding(whole[k], partials[ends[k] - counts[k] : ends[k]]) for k, i in enumerate(ids)}
