"""WORLD vocoder analysis and resynthesis (via ``pyworld``): pitch and spectral envelope edits.

WORLD splits speech into F0, a smooth spectral envelope (the vocal tract) and
aperiodicity, so pitch, formant scale and timbre can be changed independently and
put back together. ``pyworld`` 0.3.x imports ``pkg_resources``: keep ``setuptools<81``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from companion.messages import Float32Array

FloatArray = npt.NDArray[np.float64]

FRAME_MS = 5.0
F0_FLOOR = 60.0
F0_CEIL = 700.0
GRID_HZ: FloatArray = np.linspace(0.0, 8000.0, 257)
"""Common frequency grid on which envelopes of voices at different sample rates are compared."""


def _pyworld() -> Any:
    try:
        import pyworld
    except ImportError as exc:  # also raised when pkg_resources (setuptools<81) is missing
        from companion.errors import UserError

        raise UserError(
            f"voice match and formant effects need pyworld (pip install pyworld 'setuptools<81'): {exc}"
        ) from exc
    return pyworld


@dataclass(frozen=True)
class WorldFrames:
    """WORLD parameters of one signal, one row per ``FRAME_MS`` frame."""

    f0: FloatArray
    """Hz, 0 where unvoiced."""
    sp: FloatArray
    """Power spectral envelope, (frames, fft_size // 2 + 1)."""
    ap: FloatArray
    """Aperiodicity, same shape as ``sp``."""
    sample_rate: int

    @property
    def bin_hz(self) -> FloatArray:
        n = self.sp.shape[1]
        return np.linspace(0.0, self.sample_rate / 2, n)


def analyse(audio: Float32Array, sample_rate: int) -> WorldFrames:
    pw = _pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, t = pw.dio(x, sample_rate, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, sample_rate)
    fft_size = pw.get_cheaptrick_fft_size(sample_rate, F0_FLOOR)
    sp = pw.cheaptrick(x, f0, t, sample_rate, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pw.d4c(x, f0, t, sample_rate, fft_size=fft_size)
    return WorldFrames(f0, sp, ap, sample_rate)


def synthesize(frames: WorldFrames) -> Float32Array:
    pw = _pyworld()
    y = pw.synthesize(
        np.ascontiguousarray(frames.f0),
        np.ascontiguousarray(frames.sp),
        np.ascontiguousarray(frames.ap),
        frames.sample_rate,
        frame_period=FRAME_MS,
    )
    return np.asarray(y, dtype=np.float32)


def warp_bins(values: FloatArray, ratio: float) -> FloatArray:
    """Stretch spectra along frequency: what was at ``f`` moves to ``f * ratio`` (last axis)."""
    if ratio == 1.0:
        return values
    n = values.shape[-1]
    pos = np.minimum(np.arange(n) / ratio, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    return values[..., lo] * (1 - frac) + values[..., hi] * frac


def mean_log_envelope(frames: WorldFrames, max_frames: int = 4000) -> FloatArray | None:
    """Mean log power envelope of the voiced frames on :data:`GRID_HZ` (None if nothing is voiced)."""
    voiced = np.nonzero(frames.f0 > 0)[0]
    if voiced.size == 0:
        return None
    if voiced.size > max_frames:
        voiced = voiced[np.linspace(0, voiced.size - 1, max_frames).astype(int)]
    log_sp = np.log(np.maximum(frames.sp[voiced], 1e-16))
    mean = log_sp.mean(axis=0)
    return np.interp(GRID_HZ, frames.bin_hz, mean)


class WorldTransform:
    """Re-synthesise speech with a new pitch contour, formant scale and spectral tilt.

    New log-F0 = ``centre + shift + scale * (log-F0 - centre)``; the envelope is stretched by
    ``formant_ratio`` and multiplied by ``exp(eq)`` (``eq``: log power on :data:`GRID_HZ`).
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        log_f0_centre: float | None = None,
        log_f0_shift: float = 0.0,
        log_f0_scale: float = 1.0,
        formant_ratio: float = 1.0,
        eq: FloatArray | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.log_f0_centre = log_f0_centre
        self.log_f0_shift = log_f0_shift
        self.log_f0_scale = log_f0_scale
        self.formant_ratio = formant_ratio
        self.eq = eq

    def __call__(self, audio: Float32Array) -> Float32Array:
        if audio.size < self.sample_rate * FRAME_MS / 1000 * 4:
            return audio
        return self.apply(analyse(audio, self.sample_rate), audio)

    def apply(self, frames: WorldFrames, audio: Float32Array) -> Float32Array:
        """Re-synthesise already analysed ``frames`` of ``audio`` (calibration analyses once, edits many times)."""
        f0 = frames.f0.copy()
        voiced = f0 > 0
        if voiced.any():
            log_f0 = np.log(f0[voiced])
            centre = self.log_f0_centre if self.log_f0_centre is not None else float(np.median(log_f0))
            log_f0 = centre + self.log_f0_shift + self.log_f0_scale * (log_f0 - centre)
            f0[voiced] = np.clip(np.exp(log_f0), F0_FLOOR / 2, F0_CEIL * 1.5)
        sp = warp_bins(frames.sp, self.formant_ratio)
        ap = warp_bins(frames.ap, self.formant_ratio)
        if self.eq is not None:
            sp = sp * np.exp(np.interp(frames.bin_hz, GRID_HZ, self.eq))[None, :]
        out = synthesize(WorldFrames(f0, sp, ap, frames.sample_rate))[: audio.size]
        # keep the loudness of the input (the EQ and warp change it)
        rms_in = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        rms_out = float(np.sqrt(np.mean(np.square(out, dtype=np.float64))))
        if rms_out > 1e-8:
            out = out * (rms_in / rms_out)
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        if peak > 0.99:
            out = out * (0.99 / peak)
        return np.asarray(out, dtype=np.float32)
