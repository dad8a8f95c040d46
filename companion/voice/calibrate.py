"""Closed-loop voice match: fit pitch, pitch range, formant and EQ strengths by measured speaker similarity.

The open-loop plan (:func:`~companion.voice.match.plan_match`) moves every part of the voice
fully onto the reference. That helps for most references but not all: for a speaker close
to the base voice, the vocoder's own colour can outweigh what the match gains. So at
prepare time the synthesizer speaks the calibration sentences once, WORLD analyses them
once, and each candidate setting is re-synthesised from those frames and scored with
resemblyzer against the reference; a coordinate search (then a joint scaling) keeps the
best. If no setting beats the plain voice by :data:`MIN_GAIN`, matching is switched off.
The result is cached per voice and reference, so the ~20 tries (20-40 s on a busy 2-core
machine) run once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from companion.stages import Synthesizer
from companion.voice import cache
from companion.voice.audio import load_mono, resample

if TYPE_CHECKING:
    from companion.voice.match import Strengths, VoiceProfile

_log = logging.getLogger(__name__)

FIT_VERSION = "fit-v3"
RATE = 16000
"""Calibration runs at resemblyzer's rate: a third fewer samples to re-synthesise."""
GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Strengths tried for each part (above 1 overshoots: resemblyzer sometimes prefers it)."""
MIN_GAIN = 0.01
"""A setting must beat the plain voice by this much cosine to be used."""
ROUNDS = 1
POLISH = (0.75, 1.25)


def fit_cache_file(synth: Synthesizer, reference: Path, cache_dir: Path) -> Path:
    """Where the fit for this voice and reference is kept."""
    from companion.voice.match import CALIBRATION

    name = str(getattr(synth, "name", type(synth).__name__))
    parts = [FIT_VERSION, name, str(synth.sample_rate), cache.file_digest(reference), *CALIBRATION]
    return cache_dir / "voice" / f"fit-{cache.key(parts)}.npz"


def fit_strengths(
    synth: Synthesizer, reference: Path, source: VoiceProfile, ref: VoiceProfile, cache_dir: Path
) -> Strengths | None:
    """Fitted strengths (all zero = stay plain), or None when resemblyzer is not installed."""
    from companion.voice.match import CALIBRATION, MAX_REFERENCE_S, Strengths

    cache_file = fit_cache_file(synth, reference, cache_dir)
    cached = cache.load_arrays(cache_file)
    if cached is not None:
        p, r, f, e = (float(v) for v in cached["strengths"])
        return Strengths(p, r, f, e)
    try:
        from companion.voice.similarity import SpeakerSimilarity

        sim = SpeakerSimilarity()
    except Exception as exc:  # UserError, or torch failing to load
        _log.warning("voice.match: cannot calibrate without resemblyzer (%s); using the full match", exc)
        return None
    from companion.voice.match import plan_match, transform_for
    from companion.voice.world import analyse

    audio, rate = load_mono(reference)
    target = sim.embed(audio[: int(MAX_REFERENCE_S * rate)], rate)
    spoken = [resample(np.concatenate(list(synth.synthesize(text))), synth.sample_rate, RATE) for text in CALIBRATION]
    frames = [analyse(a, RATE) for a in spoken]

    def score_of(k: Strengths) -> float:
        if k.plain:
            clips = spoken
        else:
            stage = transform_for(plan_match(source, ref, strengths=k), RATE)
            clips = [stage.apply(fr, a) for fr, a in zip(frames, spoken, strict=True)]
        return float(np.mean([sim.cosine(sim.embed(c, RATE), target) for c in clips]))

    plain = score_of(Strengths(0.0, 0.0, 0.0, 0.0))
    best, best_score = Strengths(), score_of(Strengths())
    seen = {best: best_score}
    for _ in range(ROUNDS):
        improved = False
        for field in ("formants", "pitch", "range", "eq"):
            for value in GRID:
                cand = replace(best, **{field: value})
                if cand not in seen:
                    seen[cand] = score_of(cand)
                if seen[cand] > best_score + 1e-4:
                    best, best_score, improved = cand, seen[cand], True
        if not improved:
            break
    for k in POLISH:  # finally, all parts together a little less or more
        cand = best.scaled(k)
        seen[cand] = score_of(cand)
        if seen[cand] > best_score + 1e-4:
            best, best_score = cand, seen[cand]
    if best_score < plain + MIN_GAIN:
        best = Strengths(0.0, 0.0, 0.0, 0.0)
    _log.info(
        "voice.match calibrated toward %s: plain %.3f, best %.3f with pitch x%.1f range x%.1f formants x%.1f "
        "EQ x%.1f (%d tries)",
        reference,
        plain,
        max(best_score, plain),
        best.pitch,
        best.range,
        best.formants,
        best.eq,
        len(seen) + 1,
    )
    cache.save_arrays(
        cache_file, {"strengths": [best.pitch, best.range, best.formants, best.eq], "scores": [plain, best_score]}
    )
    return best
