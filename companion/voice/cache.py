"""Content-addressed caches for voice analysis (reference profiles, XTTS latents)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

_log = logging.getLogger(__name__)

_BLOCK = 1 << 20


def file_digest(path: Path) -> str:
    """sha256 of a file's content."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def large_file_fingerprint(path: Path, edge: int = 4 * _BLOCK) -> str:
    """Cheap stand-in for the digest of a multi-GB checkpoint: size + first and last ``edge`` bytes."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(edge))
        if size > 2 * edge:
            f.seek(size - edge)
            h.update(f.read(edge))
    return h.hexdigest()


def key(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_arrays(path: Path) -> dict[str, npt.NDArray[np.float64]] | None:
    """Arrays saved by :func:`save_arrays`, or None if absent or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name], dtype=np.float64) for name in data.files}
    except (OSError, ValueError) as exc:
        _log.warning("ignoring unreadable voice cache %s: %s", path, exc)
        return None


def save_arrays(path: Path, arrays: Mapping[str, npt.ArrayLike]) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
    try:
        atomic_write(path, buf.getvalue())
    except OSError as exc:  # a read-only cache must not stop the voice
        _log.warning("cannot write voice cache %s: %s", path, exc)
