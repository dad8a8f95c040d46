"""Reading, resampling and writing voice clips (soundfile + soxr; no ffmpeg needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from companion.errors import AudioFileError
from companion.messages import Float32Array


def load_mono(path: Path) -> tuple[Float32Array, int]:
    """A clip as mono float32 in [-1, 1] and its sample rate."""
    import soundfile

    if not path.is_file():
        raise AudioFileError(f"voice clip {path} not found")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioFileError(f"voice clip {path} not found") from None
    except (RuntimeError, OSError, soundfile.LibsndfileError) as exc:
        raise AudioFileError(f"cannot read voice clip {path}: {exc} (use WAV, FLAC or OGG)") from None
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def resample(audio: Float32Array, rate: int, target: int) -> Float32Array:
    if rate == target or audio.size == 0:
        return audio
    import soxr

    return np.asarray(soxr.resample(audio, rate, target, quality="HQ"), dtype=np.float32)


def load_at(path: Path, target: int) -> Float32Array:
    audio, rate = load_mono(path)
    return resample(audio, rate, target)


def write_wav(path: Path, audio: Float32Array, rate: int) -> None:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")
