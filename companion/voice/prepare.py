"""Turn raw clips of a character into one clean reference WAV for cloning and voice match.

Each clip is mixed to mono and resampled, split into speech segments at silences,
segments that are too short or clipped are dropped, and each kept segment is
loudness-normalised; the segments are joined with short pauses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.messages import Float32Array
from companion.voice.audio import load_mono, resample, write_wav

_log = logging.getLogger(__name__)

XTTS_MIN_S = 6.0
"""XTTS needs at least this much speech; about two minutes is plenty."""
PLENTY_S = 120.0


@dataclass(frozen=True)
class PrepareOptions:
    rate: int = 22050
    frame_ms: float = 20.0
    silence_db: float = 50.0
    """A frame is silent when it is this far below the clip's loud frames..."""
    noise_margin_db: float = 12.0
    """...or less than this above the clip's noise floor."""
    min_gap_s: float = 0.5
    """Shorter pauses do not split a segment."""
    min_segment_s: float = 1.0
    pad_s: float = 0.08
    max_clipped: float = 0.002
    """Fraction of flat-topped samples (clipping) above which a segment is dropped."""
    target_dbfs: float = -20.0
    gap_s: float = 0.3


@dataclass
class PrepareReport:
    kept: int = 0
    too_short: int = 0
    clipped: int = 0
    usable_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def enough_for_xtts(self) -> bool:
        return self.usable_s >= XTTS_MIN_S


def _frame_db(audio: Float32Array, frame: int) -> Float32Array:
    n = audio.size // frame
    if n == 0:
        return np.zeros(0, np.float32)
    frames = audio[: n * frame].reshape(n, frame).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-9)), dtype=np.float32)


def find_segments(audio: Float32Array, rate: int, opts: PrepareOptions) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech between silences."""
    frame = max(1, int(rate * opts.frame_ms / 1000))
    db = _frame_db(audio, frame)
    if db.size == 0:
        return []
    loud, noise = (float(v) for v in np.percentile(db, [95, 10]))
    voiced = db > max(loud - opts.silence_db, noise + opts.noise_margin_db, -70.0)
    segments: list[tuple[int, int]] = []
    gap_frames = int(opts.min_gap_s * 1000 / opts.frame_ms)
    start: int | None = None
    silent_run = 0
    for i, v in enumerate(voiced):
        if v:
            if start is None:
                start = i
            silent_run = 0
        elif start is not None:
            silent_run += 1
            if silent_run > gap_frames:
                segments.append((start, i - silent_run + 1))
                start, silent_run = None, 0
    if start is not None:
        segments.append((start, len(voiced) - silent_run))
    pad = int(opts.pad_s * rate)
    return [(max(0, s * frame - pad), min(audio.size, e * frame + pad)) for s, e in segments]


def clipped_fraction(piece: Float32Array, peak: float) -> float:
    """Share of samples in flat tops (3+ samples in a row at the clip's peak level)."""
    if peak < 0.25 or piece.size < 3:
        return 0.0
    at = np.abs(piece) >= 0.999 * peak
    flat = at[1:-1] & at[:-2] & at[2:]
    return float(flat.mean())


def normalise(segment: Float32Array, target_dbfs: float) -> Float32Array:
    frame = 320
    db = _frame_db(segment, frame)
    active = db[db > (db.max() - 30 if db.size else 0)]
    level = float(10 * np.log10(np.mean(10 ** (active / 10)))) if active.size else -90.0
    out = segment * np.float32(10 ** ((target_dbfs - level) / 20))
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0.89:  # keep 1 dB of headroom rather than clip
        out = out * np.float32(0.89 / peak)
    return np.asarray(out, dtype=np.float32)


def prepare_clips(clips: Sequence[Path], output: Path, opts: PrepareOptions | None = None) -> PrepareReport:
    """Write the cleaned reference to ``output`` and say how much usable speech it has."""
    opts = opts or PrepareOptions()
    report = PrepareReport()
    kept: list[Float32Array] = []
    gap = np.zeros(int(opts.gap_s * opts.rate), np.float32)
    for clip in clips:
        raw, rate = load_mono(clip)
        peak = float(np.max(np.abs(raw))) if raw.size else 0.0
        for start, end in find_segments(raw, rate, opts):
            piece = raw[start:end]
            if piece.size / rate < opts.min_segment_s:
                report.too_short += 1
                continue
            if clipped_fraction(piece, peak) > opts.max_clipped:
                report.clipped += 1
                continue
            kept.append(normalise(resample(piece, rate, opts.rate), opts.target_dbfs))
    report.kept = len(kept)
    report.usable_s = sum(k.size for k in kept) / opts.rate
    if not kept:
        report.notes.append("no usable speech found: nothing written")
        return report
    joined = np.concatenate([x for k in kept for x in (k, gap)][:-1])
    write_wav(output, joined, opts.rate)
    if report.usable_s < XTTS_MIN_S:
        report.notes.append(
            f"only {report.usable_s:.1f} s of usable speech: XTTS needs at least {XTTS_MIN_S:.0f} s "
            f"(about {PLENTY_S / 60:.0f} minutes is plenty)"
        )
    _log.info("prepared %s: %d segments, %.1f s", output, report.kept, report.usable_s)
    return report
