"""Decoding any media file to mono audio with PyAV (its wheels bundle FFmpeg: MKV, MP4, AC3, AAC...)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import AudioFileError, UserError
from companion.messages import Float32Array
from companion.studio.progress import Progress, clock_time

_log = logging.getLogger(__name__)

MAX_SOURCE_S = 4 * 3600.0
"""Longest stretch decoded at once (memory: about 320 MB per hour at 22.05 kHz)."""


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise UserError(
            f"the voice studio needs PyAV to decode media: pip install 'companion[studio]' ({exc})"
        ) from exc
    return av


def duration_s(path: Path) -> float:
    """Length of the first audio stream (0 if the container does not say)."""
    av = _av()
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / 1e6


def _audio_stream(container: Any, path: Path) -> Any:
    if not container.streams.audio:
        raise AudioFileError(f"{path} has no audio stream")
    return container.streams.audio[0]


def decode(
    path: Path, rate: int, span: tuple[float, float] | None = None, *, progress: Progress | None = None
) -> Float32Array:
    """The first audio stream of ``path`` (optionally only ``span`` seconds) as mono float32 at ``rate``."""
    av = _av()
    if not path.is_file():
        raise AudioFileError(f"media file {path} not found")
    start, end = span if span is not None else (0.0, MAX_SOURCE_S)
    if end - start > MAX_SOURCE_S:
        raise UserError(f"{path}: cannot decode more than {MAX_SOURCE_S / 3600:.0f} h at once: use --range")
    try:
        audio, first = _decode(av, path, rate, start, end, progress, seek=start > 0)
        if first > start + 0.05:  # the container's index overshot: decode from the beginning
            audio, first = _decode(av, path, rate, start, end, progress, seek=False)
    except av.error.FFmpegError as exc:
        raise AudioFileError(f"cannot decode {path}: {exc}") from None
    skip = max(0, round((start - first) * rate))
    audio = audio[skip : skip + int((end - start) * rate)]
    if progress is not None:
        progress.update(progress.total, f"{clock_time(start + audio.size / rate)}")
    _log.debug("decoded %s: %.1f s at %d Hz", path, audio.size / rate, rate)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _decode(
    av: Any, path: Path, rate: int, start: float, end: float, progress: Progress | None, *, seek: bool
) -> tuple[Float32Array, float]:
    """(audio from about ``start`` to ``end``, time of its first sample)."""
    pieces: list[Float32Array] = []
    got = 0
    with av.open(str(path)) as container:
        stream = _audio_stream(container, path)
        if seek:  # on the audio stream's own index, at or before start
            container.seek(int(start / stream.time_base), stream=stream)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        first: float | None = None
        for frame in container.decode(stream):
            if first is None:
                if frame.time is not None and frame.time + frame.samples / frame.sample_rate < start:
                    continue  # still before the span
                first = float(frame.time or 0.0)
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
                got += pieces[-1].size
            if progress is not None:
                progress.update(got / rate, f"{clock_time(first + got / rate)}")
            if first + got / rate >= end:
                break
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray().reshape(-1))
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return audio, first if first is not None else start


def decode_all(path: Path, rate: int, spans: Sequence[tuple[float, float]]) -> list[tuple[float, Float32Array]]:
    """(start_s, audio) for each span of ``path`` (the whole file when ``spans`` is empty)."""
    if not spans:
        total = duration_s(path) or 1.0
        return [(0.0, decode(path, rate, progress=Progress(f"decoding {path.name}", total)))]
    return [
        (s, decode(path, rate, (s, e), progress=Progress(f"decoding {path.name} {clock_time(s)}", e - s)))
        for s, e in spans
    ]
