"""The studio workspace: ``segments.json`` plus one WAV per segment, written atomically.

Layout::

    WORKSPACE/segments.json      sources, speakers and segments (decisions included)
    WORKSPACE/audio/ID.wav       each segment, mono 16-bit at :data:`RATE`
    WORKSPACE/embeddings.npz     speaker embeddings per segment id (cache for resumed runs)
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from companion.errors import UserError
from companion.voice.cache import atomic_write

RATE = 22050
"""Sample rate of segment audio (Piper's and LJSpeech's)."""
VERSION = 1
DECISIONS = ("undecided", "target", "other", "discard")
FLAGS = ("overlap", "music", "noise", "clipped", "short", "no_speech")


@dataclass(frozen=True)
class Segment:
    id: str
    source: str
    """The media file the segment comes from."""
    start_s: float
    end_s: float
    """Position in ``source``, seconds."""
    transcript: str | None = None
    """None until transcribed."""
    speaker: str | None = None
    """Predicted speaker ("S1", "S2", ...); the one closest to the --target clips is "target"."""
    score: float = 0.0
    """Similarity to the target speaker (or to its own speaker when there is no target), -1..1."""
    flags: tuple[str, ...] = ()
    snr_db: float = 0.0
    decision: str = "undecided"
    trim_start_s: float = 0.0
    """Seconds cut from the start of the segment by the reviewer."""
    trim_end_s: float = 0.0
    """Seconds cut from the end."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def kept_s(self) -> float:
        return max(0.0, self.duration_s - self.trim_start_s - self.trim_end_s)

    def audio_name(self) -> str:
        return f"audio/{self.id}.wav"

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> Segment:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{where}: unknown segment field {unknown[0]!r}")
        try:
            seg = cls(**{**data, "flags": tuple(data.get("flags", ()))})
        except TypeError as exc:
            raise UserError(f"{where}: bad segment {data.get('id')!r}: {exc}") from None
        if seg.decision not in DECISIONS:
            raise UserError(f"{where}: segment {seg.id}: decision {seg.decision!r} is not one of {DECISIONS}")
        return seg


@dataclass
class Workspace:
    """A studio workspace directory; :meth:`save` replaces ``segments.json`` atomically."""

    path: Path
    sources: list[dict[str, Any]] = field(default_factory=list)
    """What the segments were cut from: path, size, ranges."""
    targets: list[str] = field(default_factory=list)
    embedder: str = ""
    segments: list[Segment] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def file(self) -> Path:
        return self.path / "segments.json"

    @classmethod
    def open(cls, path: Path) -> Workspace:
        """An existing workspace (one-line error if there is none or it is damaged)."""
        file = path / "segments.json"
        if not file.is_file():
            raise UserError(f"{path} is not a studio workspace (no segments.json): run companion voice studio first")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {file}: {exc}") from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise UserError(f"{file}: not a version {VERSION} studio workspace")
        segments = [Segment.from_json(s, str(file)) for s in data.get("segments", [])]
        return cls(
            path, list(data.get("sources", [])), list(data.get("targets", [])), data.get("embedder", ""), segments
        )

    def save(self) -> None:
        with self._lock:
            data = {
                "version": VERSION,
                "sources": self.sources,
                "targets": self.targets,
                "embedder": self.embedder,
                "segments": [asdict(s) for s in self.segments],
            }
            atomic_write(self.file, json.dumps(data, indent=1).encode())

    def segment(self, seg_id: str) -> Segment:
        for seg in self.segments:
            if seg.id == seg_id:
                return seg
        raise KeyError(seg_id)

    def update(self, seg_id: str, **changes: Any) -> Segment:
        """Change one segment (a decision or trims) and save at once."""
        with self._lock:
            index = next((i for i, s in enumerate(self.segments) if s.id == seg_id), None)
            if index is None:
                raise KeyError(seg_id)
            seg = replace(self.segments[index], **changes)
            self.segments[index] = seg
        self.save()
        return seg
