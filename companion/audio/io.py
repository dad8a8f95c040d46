"""Reading, writing and converting audio (mono float32 in [-1, 1] unless said otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from companion.errors import AudioFileError
from companion.messages import Float32Array, Int16Array

STT_RATE = 16000
"""The rate the turn detector and speech-to-text work at."""


def read_audio(path: Path | str) -> tuple[Float32Array, int]:
    """Read an audio file as mono float32 and its sample rate, with one-line errors."""
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, expected an audio file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: the file is empty, expected a WAV/FLAC/OGG recording")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFileError(f"{p}: not a readable audio file ({exc}); use WAV, FLAC or OGG") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{p}: the recording holds no samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


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
    import soundfile as sf

    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")


def rms_dbfs(samples: Float32Array) -> float:
    if len(samples) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-6))
