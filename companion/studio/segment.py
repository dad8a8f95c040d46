"""Cutting a long recording into speech segments (webrtcvad), and measuring each one's quality.

Segments are runs of voiced 30 ms frames joined across pauses shorter than ``join_pause_s``;
long runs are cut at their quietest frame so no segment exceeds ``max_s``. Quality: SNR
(loud frames against the quiet frames between words), what lies under the speech (tonal:
music, flat: noise), broadband bursts, and clipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from companion.messages import Float32Array

VAD_RATE = 16000
FRAME_S = 0.03


@dataclass(frozen=True)
class SegmentOptions:
    aggressiveness: int = 3
    join_pause_s: float = 0.25
    """Pauses shorter than this stay inside a segment."""
    min_s: float = 0.4
    """Shorter speech runs are dropped."""
    max_s: float = 12.0
    pad_s: float = 0.08
    bed_snr_db: float = 15.0
    """Speech less than this far above the bed under it is flagged ``music`` or ``noise``."""
    tonal_flatness: float = 0.2
    """A bed with a flatter spectrum than this is noise, not music."""
    burst_flatness: float = 0.3
    burst_s: float = 0.3
    short_s: float = 1.0
    """Segments shorter than this are flagged ``short`` (too little to judge the speaker)."""


def voiced_frames(audio16k: Float32Array, aggressiveness: int) -> npt.NDArray[np.bool_]:
    import webrtcvad

    vad = webrtcvad.Vad(aggressiveness)
    n = int(FRAME_S * VAD_RATE)
    pcm = (np.clip(audio16k, -1, 1) * 32767).astype(np.int16)
    count = pcm.size // n
    return np.array([vad.is_speech(pcm[i * n : (i + 1) * n].tobytes(), VAD_RATE) for i in range(count)], dtype=bool)


def _frame_db(audio: Float32Array, n: int) -> npt.NDArray[np.float64]:
    count = audio.size // n
    frames = audio[: count * n].reshape(count, n).astype(np.float64)
    return 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-12))


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _split_long(start: int, end: int, db: npt.NDArray[np.float64], max_frames: int) -> list[tuple[int, int]]:
    if end - start <= max_frames:
        return [(start, end)]
    lo, hi = start + max_frames // 3, min(end - max_frames // 6, start + max_frames)
    cut = lo + int(np.argmin(db[lo:hi])) if hi > lo else start + max_frames
    return [(start, cut), *_split_long(cut, end, db, max_frames)]


def find_speech(audio16k: Float32Array, opts: SegmentOptions) -> list[tuple[float, float]]:
    """(start_s, end_s) of the speech segments in ``audio16k``."""
    voiced = voiced_frames(audio16k, opts.aggressiveness)
    if not voiced.any():
        return []
    join = round(opts.join_pause_s / FRAME_S)
    filled = voiced.copy()
    for a, b in _runs(~voiced):
        if a > 0 and b < voiced.size and b - a <= join:
            filled[a:b] = True
    db = _frame_db(audio16k, int(FRAME_S * VAD_RATE))
    spans: list[tuple[int, int]] = []
    for a, b in _runs(filled):
        if (b - a) * FRAME_S >= opts.min_s:
            spans.extend(_split_long(a, b, db, int(opts.max_s / FRAME_S)))
    total = audio16k.size / VAD_RATE
    out: list[tuple[float, float]] = []
    for a, b in spans:
        start = max(0.0, a * FRAME_S - opts.pad_s)
        end = min(total, b * FRAME_S + opts.pad_s)
        if out and start < out[-1][1]:  # padding must not overlap the previous segment
            start = (out[-1][1] + a * FRAME_S) / 2
            out[-1] = (out[-1][0], start)
        out.append((start, end))
    return out


def _power_frames(audio16k: Float32Array) -> npt.NDArray[np.float64]:
    """Power spectra (frames x bins, 100-7000 Hz) of 32 ms frames every 16 ms."""
    n, hop = 512, 256
    if audio16k.size < n:
        audio16k = np.pad(audio16k, (0, n - audio16k.size))
    count = 1 + (audio16k.size - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(audio16k[idx].astype(np.float64) * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / VAD_RATE)
    return power[:, (freqs >= 100) & (freqs <= 7000)] + 1e-12


def _flatness(power: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Spectral flatness along the last axis: ~0 for tones, ~0.6 for white noise."""
    return np.exp(np.mean(np.log(power), axis=-1)) / np.mean(power, axis=-1)


def quality_flags(audio16k: Float32Array, opts: SegmentOptions) -> tuple[float, list[str]]:
    """(SNR in dB, flags among music / noise / clipped / short) of one segment.

    The quietest frames (between words) hold what lies under the speech: when they are
    within ``bed_snr_db`` of the speech, the bed is ``music`` if its spectrum is tonal and
    ``noise`` if flat. A broadband burst lasting ``burst_s`` at speech level is ``noise`` too.
    """
    from companion.voice.prepare import clipped_fraction

    power = _power_frames(audio16k)
    level = 10 * np.log10(power.sum(axis=1))
    loud, quiet = np.percentile(level, [70, 15])
    speech = power[level >= loud].sum(axis=1).mean()
    bed = power[level <= quiet]
    snr = float(10 * np.log10(speech / bed.sum(axis=1).mean()))
    flags: list[str] = []
    if snr < opts.bed_snr_db:
        flags.append("music" if float(_flatness(bed.mean(axis=0))) < opts.tonal_flatness else "noise")
    flat = (_flatness(power) > opts.burst_flatness) & (level > np.median(level))
    runs = [b - a for a, b in _runs(flat)]
    if runs and max(runs) * 0.016 >= opts.burst_s and "noise" not in flags:
        flags.append("noise")
    peak = float(np.max(np.abs(audio16k))) if audio16k.size else 0.0
    if clipped_fraction(audio16k, peak) > 0.002:
        flags.append("clipped")
    if audio16k.size / VAD_RATE < opts.short_s:
        flags.append("short")
    return snr, flags
