"""Voice match: move a TTS voice toward a reference speaker (``voice.match: ref.wav``).

Both voices are summarised by a :class:`VoiceProfile` - median and spread of log-F0 and
the mean log spectral envelope of voiced speech. From the two profiles we derive a
pitch mapping, a vocal-tract (formant) scale that best aligns the envelopes, and a
smooth EQ for the remaining timbre difference, then re-synthesise every sentence with
the WORLD vocoder. How far each part moves is fitted by measured speaker similarity
(:mod:`companion.voice.calibrate`); where matching does not help, it is switched off.
Profiles and fits are cached on disk, keyed by content.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from companion.errors import UserError
from companion.messages import Float32Array
from companion.stages import Synthesizer
from companion.voice import cache
from companion.voice.audio import load_mono
from companion.voice.world import GRID_HZ, FloatArray, WorldTransform, analyse, mean_log_envelope, warp_bins

_log = logging.getLogger(__name__)

ANALYSIS_VERSION = "profile-v1"
MAX_REFERENCE_S = 90.0
CALIBRATION = (
    "The quick brown fox jumps over the lazy dog.",
    "I have been waiting here for a very long time, my friend.",
    "Could you please tell me where the nearest station is?",
    "Seven bright stars were shining over the quiet water.",
    "That is amazing, we should try it again tomorrow morning!",
)
"""Sentences the synthesizer speaks once to measure its own voice."""

MAX_EQ_DB = 12.0
BAND_HZ = (150.0, 5000.0)


@dataclass(frozen=True)
class VoiceProfile:
    log_f0_median: float
    log_f0_spread: float
    """Robust standard deviation of log-F0 over voiced frames."""
    envelope: FloatArray
    """Mean log power envelope of voiced frames on :data:`GRID_HZ`."""
    nyquist: float
    voiced_seconds: float

    def arrays(self) -> dict[str, FloatArray]:
        scalars = [self.log_f0_median, self.log_f0_spread, self.nyquist, self.voiced_seconds]
        return {"scalars": np.asarray(scalars, dtype=np.float64), "envelope": self.envelope}

    @classmethod
    def from_arrays(cls, arrays: dict[str, FloatArray]) -> VoiceProfile:
        median, spread, nyquist, voiced = (float(v) for v in arrays["scalars"])
        return cls(median, spread, arrays["envelope"], nyquist, voiced)


def profile_of(audio: Float32Array, sample_rate: int, what: str = "audio") -> VoiceProfile:
    frames = analyse(audio, sample_rate)
    voiced = frames.f0[frames.f0 > 0]
    envelope = mean_log_envelope(frames)
    if voiced.size < 20 or envelope is None:
        raise UserError(f"{what} has too little voiced speech to match a voice to")
    log_f0 = np.log(voiced)
    p10, p50, p90 = np.percentile(log_f0, [10, 50, 90])
    spread = max(float(p90 - p10) / 2.563, 1e-3)
    return VoiceProfile(float(p50), spread, envelope, sample_rate / 2, voiced.size * 0.005)


def reference_profile(path: Path, cache_dir: Path) -> VoiceProfile:
    """Profile of a reference clip; analysed once, then read from the cache."""
    if not path.is_file():
        raise UserError(f"voice.match: reference clip {path} not found")
    cache_file = cache_dir / "voice" / f"ref-{cache.key([ANALYSIS_VERSION, cache.file_digest(path)])}.npz"
    cached = cache.load_arrays(cache_file)
    if cached is not None:
        _log.debug("reference profile of %s from %s", path, cache_file)
        return VoiceProfile.from_arrays(cached)
    audio, rate = load_mono(path)
    audio = audio[: int(MAX_REFERENCE_S * rate)]
    profile = profile_of(audio, rate, what=f"voice.match: {path}")
    cache.save_arrays(cache_file, profile.arrays())
    _log.info("analysed voice reference %s (%.1f s voiced)", path, profile.voiced_seconds)
    return profile


def source_profile(synth: Synthesizer, cache_dir: Path) -> VoiceProfile:
    """Profile of ``synth``'s own voice, from the calibration sentences (cached per voice)."""
    name = str(getattr(synth, "name", type(synth).__name__))
    parts = [ANALYSIS_VERSION, name, str(synth.sample_rate), *CALIBRATION]
    cache_file = cache_dir / "voice" / f"src-{cache.key(parts)}.npz"
    cached = cache.load_arrays(cache_file)
    if cached is not None:
        return VoiceProfile.from_arrays(cached)
    pieces = [chunk for text in CALIBRATION for chunk in synth.synthesize(text)]
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    profile = profile_of(audio, synth.sample_rate, what=f"voice {name}")
    cache.save_arrays(cache_file, profile.arrays())
    return profile


@dataclass(frozen=True)
class MatchPlan:
    """How to move the source voice onto the reference."""

    log_f0_centre: float
    log_f0_shift: float
    log_f0_scale: float
    formant_ratio: float
    eq: FloatArray

    def describe(self) -> str:
        semis = self.log_f0_shift * 12 / np.log(2)
        eq_db = 10 * self.eq / np.log(10)
        return (
            f"pitch {semis:+.1f} semitones, pitch range x{self.log_f0_scale:.2f}, "
            f"formants x{self.formant_ratio:.3f}, EQ {eq_db.min():+.1f}..{eq_db.max():+.1f} dB"
        )


def _band(source: VoiceProfile, reference: VoiceProfile) -> npt.NDArray[np.bool_]:
    top = min(BAND_HZ[1], 0.9 * source.nyquist, 0.9 * reference.nyquist)
    return (BAND_HZ[0] <= GRID_HZ) & (top >= GRID_HZ)


def _centred(values: FloatArray, band: npt.NDArray[np.bool_]) -> FloatArray:
    return values - values[band].mean()


@dataclass(frozen=True)
class Strengths:
    """How far to move each part of the voice: 0 = keep the source's, 1 = the reference's."""

    pitch: float = 1.0
    """Median pitch."""
    range: float = 1.0
    """Pitch range (spread of the intonation)."""
    formants: float = 1.0
    eq: float = 1.0

    def scaled(self, k: float) -> Strengths:
        return Strengths(self.pitch * k, self.range * k, self.formants * k, self.eq * k)

    @property
    def plain(self) -> bool:
        return self.pitch == self.range == self.formants == self.eq == 0.0


def plan_match(
    source: VoiceProfile,
    reference: VoiceProfile,
    *,
    strength: float = 1.0,
    extra_semitones: float = 0.0,
    strengths: Strengths | None = None,
) -> MatchPlan:
    band = _band(source, reference)
    ref_env = _centred(reference.envelope, band)
    ratios = np.exp(np.linspace(np.log(0.7), np.log(1.5), 77))
    errors = [float(np.mean((_centred(warp_bins(source.envelope, r), band) - ref_env)[band] ** 2)) for r in ratios]
    ratio = float(ratios[int(np.argmin(errors))])
    residual = ref_env - _centred(warp_bins(source.envelope, ratio), band)
    residual = np.where(band, residual, 0.0)
    kernel = np.hanning(15)
    smooth = np.convolve(residual, kernel / kernel.sum(), mode="same")
    limit = MAX_EQ_DB * np.log(10) / 10
    eq = np.clip(smooth - smooth[band].mean(), -limit, limit)
    # beyond the compared band, hold the EQ at its edge values
    idx = np.nonzero(band)[0]
    eq[: idx[0]] = eq[idx[0]]
    eq[idx[-1] + 1 :] = eq[idx[-1]]
    shift = reference.log_f0_median - source.log_f0_median
    scale = float(np.clip(reference.log_f0_spread / source.log_f0_spread, 0.5, 2.0))
    k = (strengths or Strengths()).scaled(strength)
    return MatchPlan(
        log_f0_centre=source.log_f0_median,
        log_f0_shift=k.pitch * shift + extra_semitones * np.log(2) / 12,
        log_f0_scale=scale**k.range,
        formant_ratio=ratio**k.formants,
        eq=k.eq * eq,
    )


def transform_for(plan: MatchPlan, sample_rate: int) -> WorldTransform:
    return WorldTransform(
        sample_rate,
        log_f0_centre=plan.log_f0_centre,
        log_f0_shift=plan.log_f0_shift,
        log_f0_scale=plan.log_f0_scale,
        formant_ratio=plan.formant_ratio,
        eq=plan.eq,
    )


def build_matcher(
    synth: Synthesizer,
    reference: Path,
    cache_dir: Path,
    *,
    strength: float = 1.0,
    extra_semitones: float = 0.0,
    calibrate: bool = True,
) -> WorldTransform | None:
    """The voice-match stage, its strengths fitted by measured speaker similarity (closed loop).

    Returns None when matching does not bring the voice closer to the reference (and no
    extra pitch is asked for): the plain voice is then the closest one.
    """
    ref = reference_profile(reference, cache_dir)
    source = source_profile(synth, cache_dir)
    strengths = Strengths()
    if calibrate:
        from companion.voice.calibrate import fit_strengths

        fitted = fit_strengths(synth, reference, source, ref, cache_dir)
        if fitted is not None:
            strengths = fitted
    if strengths.plain and not extra_semitones:
        _log.info("voice match toward %s: the plain voice is closest; matching is off", reference)
        return None
    plan = plan_match(source, ref, strength=strength, extra_semitones=extra_semitones, strengths=strengths)
    _log.info("voice match toward %s: %s", reference, plan.describe())
    return transform_for(plan, synth.sample_rate)
