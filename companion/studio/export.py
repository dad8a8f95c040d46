"""``companion voice export``: the reviewed target speech as a reference clip, a dataset and a persona snippet.

``reference.wav`` takes the best target segments - ranked by SNR, never clipped or
overlapped, music and noise last - until it holds up to ``max_s`` seconds (at least
``min_s`` are wanted: XTTS and ``voice.match`` need some variety). ``dataset/`` is in
LJSpeech layout (``wavs/ID.wav`` and ``metadata.csv`` with ``id|text|normalised text``)
for fine-tuning a Piper or XTTS voice.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.errors import UserError
from companion.messages import Float32Array
from companion.studio.workspace import RATE, Segment, Workspace
from companion.voice.audio import load_mono, write_wav
from companion.voice.cache import atomic_write
from companion.voice.prepare import clipped_fraction, normalise

_log = logging.getLogger(__name__)

NEVER = frozenset({"overlap", "clipped"})
PENALTY_DB = {"music": 15.0, "noise": 15.0, "short": 5.0, "no_speech": 30.0}
GAP_S = 0.3


@dataclass
class ExportReport:
    reference: Path
    reference_s: float = 0.0
    dataset_clips: int = 0
    dataset_s: float = 0.0
    snippet: str = ""
    notes: list[str] = field(default_factory=list)


def quality(seg: Segment) -> float:
    """Higher is better: SNR in dB less penalties for flags."""
    return seg.snr_db - sum(PENALTY_DB.get(f, 0.0) for f in seg.flags)


def kept_audio(ws: Workspace, seg: Segment) -> Float32Array:
    audio, rate = load_mono(ws.path / seg.audio_name())
    start = int(seg.trim_start_s * rate)
    end = audio.size - int(seg.trim_end_s * rate)
    return audio[start : max(start, end)]


def snippet_for(reference: Path) -> str:
    ref = reference.resolve()
    return (
        "voice:\n"
        "  engine: piper\n"
        f"  match: {ref}            # joe moved toward the character (self-calibrated)\n"
        "  # or clone it with XTTS (make install-xtts):\n"
        "  # engine: xtts\n"
        f"  # reference: [{ref}]\n"
    )


def export(ws: Workspace, out: Path | None = None, *, min_s: float = 10.0, max_s: float = 60.0) -> ExportReport:
    out = out or ws.path / "export"
    chosen = [s for s in ws.segments if s.decision == "target" and not NEVER.intersection(s.flags) and s.kept_s > 0.3]
    if not chosen:
        raise UserError(f"{ws.path}: no segments marked target (without overlap or clipping): review them first")
    report = ExportReport(out / "reference.wav")
    pieces: list[Float32Array] = []
    gap = np.zeros(int(GAP_S * RATE), np.float32)
    for seg in sorted(chosen, key=quality, reverse=True):
        if report.reference_s + seg.kept_s > max_s:
            continue
        audio = kept_audio(ws, seg)
        if clipped_fraction(audio, float(np.max(np.abs(audio)))) > 0.002:
            continue
        pieces.append(normalise(audio, -20.0))
        report.reference_s += audio.size / RATE
    if not pieces:
        raise UserError(f"{ws.path}: every target segment is longer than {max_s:.0f} s or clipped")
    write_wav(report.reference, np.concatenate([x for p in pieces for x in (p, gap)][:-1]), RATE)
    if report.reference_s < min_s:
        report.notes.append(
            f"only {report.reference_s:.1f} s of clean target speech "
            f"(want {min_s:.0f}-{max_s:.0f} s): mark more segments"
        )
    rows = io.StringIO()
    writer = csv.writer(rows, delimiter="|", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    for seg in chosen:
        text = " ".join((seg.transcript or "").split())
        if not text:
            continue
        audio = normalise(kept_audio(ws, seg), -20.0)
        write_wav(out / "dataset" / "wavs" / f"{seg.id}.wav", audio, RATE)
        writer.writerow([seg.id, text, text])
        report.dataset_clips += 1
        report.dataset_s += audio.size / RATE
    atomic_write(out / "dataset" / "metadata.csv", rows.getvalue().encode())
    report.snippet = snippet_for(report.reference)
    atomic_write(out / "voice.yaml", report.snippet.encode())
    _log.info("exported %s: %.1f s reference, %d dataset clips", out, report.reference_s, report.dataset_clips)
    return report
