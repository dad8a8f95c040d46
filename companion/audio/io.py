"""Reading, writing and converting audio (mono float32 in [-1, 1] unless said otherwise).

Recordings are read within :mod:`companion.limits` (sample rate, duration, finite
samples), and :func:`recording_notes` says what is odd about one (clipped, silent,
too short) so that commands can say what they found instead of printing nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from companion import limits
from companion.errors import AudioFileError
from companion.messages import Float32Array, Int16Array

STT_RATE = 16000
"""The rate the turn detector and speech-to-text work at."""
_BLOCK_SAMPLES = 4 * 1024 * 1024
"""Samples (all channels) read at a time: 16 MB of float32."""


def read_audio(path: Path | str, *, max_seconds: float = limits.MAX_RECORDING_S) -> tuple[Float32Array, int]:
    """Read an audio file as mono float32 and its sample rate, with one-line errors.

    Refused: sample rates outside 4-192 kHz, recordings over ``max_seconds``, NaN or
    infinite samples. Read a minute at a time, so memory is that of the mono result.
    """
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, expected an audio file")
    if not p.is_file():
        raise AudioFileError(f"{p}: not a regular file, expected an audio file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: the file is empty, expected a WAV/FLAC/OGG recording")
    try:
        with sf.SoundFile(str(p)) as f:
            rate = int(f.samplerate)
            if not limits.MIN_SAMPLE_RATE <= rate <= limits.MAX_SAMPLE_RATE:
                raise AudioFileError(
                    f"{p}: sample rate {rate} Hz; expected {limits.MIN_SAMPLE_RATE} to {limits.MAX_SAMPLE_RATE} Hz "
                    "(is the header damaged?)"
                )
            if not 1 <= f.channels <= limits.MAX_CHANNELS:
                raise AudioFileError(f"{p}: {f.channels} channels; expected 1 to {limits.MAX_CHANNELS}")
            if f.frames > max_seconds * rate:
                raise AudioFileError(
                    f"{p}: {_duration(f.frames / rate)} long; recordings are limited to {_duration(max_seconds)}"
                )
            size = max(min(60 * rate, _BLOCK_SAMPLES // f.channels), 1)
            blocks = [_mono(b) for b in f.blocks(blocksize=size, dtype="float32", always_2d=True)]
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(f"{p}: not a readable audio file ({exc}); use WAV, FLAC or OGG") from None
    except MemoryError:
        raise AudioFileError(f"{p}: too large to read ({p.stat().st_size} bytes)") from None
    mono = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if len(mono) == 0:
        raise AudioFileError(f"{p}: the recording holds no samples")
    bad = int(np.count_nonzero(~np.isfinite(mono)))
    if bad:
        raise AudioFileError(f"{p}: {bad} of {len(mono)} samples are NaN or infinite; the file is damaged")
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def _mono(block: np.ndarray) -> Float32Array:
    return np.asarray(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0], dtype=np.float32)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.1f} s"


class Note(NamedTuple):
    """Something odd about a recording."""

    text: str
    """A phrase: "it is silent (peak -91 dBFS over 10 minutes)"."""
    no_speech: bool
    """True when it rules out any speech (too short, silent)."""


def recording_notes(samples: Float32Array, rate: int) -> list[Note]:
    """What is odd about a recording: too short, silent, clipped (empty when nothing is)."""
    notes: list[Note] = []
    seconds = len(samples) / rate
    if seconds < limits.MIN_RECORDING_S:
        notes.append(Note(f"it is only {seconds * 1000:.1f} ms long ({len(samples)} samples)", True))
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak == 0.0:
        notes.append(Note("every sample is zero", True))
    elif 20.0 * np.log10(peak) < limits.SILENT_DBFS:
        notes.append(Note(f"it is silent (peak {20.0 * np.log10(peak):.0f} dBFS over {_duration(seconds)})", True))
    clipped = float(np.mean(np.abs(samples) >= 0.999)) if len(samples) > 1 else 0.0
    if clipped > limits.CLIPPED_WARN_FRACTION:
        notes.append(Note(f"{clipped * 100:.0f}% of the samples are clipped at full scale", False))
    return notes


def resample(samples: Float32Array, src_rate: int, dst_rate: int) -> Float32Array:
    """High-quality resampling (soxr); a no-op when the rates match."""
    if src_rate == dst_rate or len(samples) == 0:
        return samples
    import soxr

    return np.asarray(soxr.resample(samples, src_rate, dst_rate, quality="HQ"), dtype=np.float32)


def to_int16(samples: Float32Array) -> Int16Array:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def to_float32(samples: Int16Array) -> Float32Array:
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def load_for_stt(path: Path | str) -> Int16Array:
    """A recording as 16 kHz mono 16-bit, whatever its format, rate or channels."""
    samples, rate = read_audio(path)
    return to_int16(resample(samples, rate, STT_RATE))


def write_wav(path: Path | str, samples: Float32Array, rate: int) -> None:
    """16-bit WAV, in whole: written beside ``path`` and renamed, so a reader never sees half a file
    (a client polling for a reply's WAV once read its header before the data was there)."""
    import soundfile as sf

    path = Path(path)
    part = path.with_name(f".{path.name}.part")
    try:
        kind = path.suffix.lstrip(".").upper() or "WAV"  # as soundfile reads it from the name
        sf.write(str(part), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16", format=kind)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def rms_dbfs(samples: Float32Array) -> float:
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-6))
