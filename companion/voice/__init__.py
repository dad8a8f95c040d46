"""Voice shaping on top of a TTS engine: voice match toward a reference, pitch, effects, volume.

:func:`wrap` is called by :func:`companion.tts.build_synthesizer`; the result is still a
streaming :class:`~companion.stages.Synthesizer` that processes each chunk the engine
yields (Piper: one per sentence) as it arrives. pyworld and pedalboard are imported
only when a persona uses them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from companion.messages import Float32Array
from companion.stages import Synthesizer

if TYPE_CHECKING:
    from companion.tts.voice import VoiceSettings

_log = logging.getLogger(__name__)

Stage = Callable[[Float32Array], Float32Array]


class ShapedSynthesizer:
    """A synthesizer whose every chunk passes through ``stages`` in order."""

    def __init__(self, inner: Synthesizer, stages: Sequence[Stage]) -> None:
        self.inner = inner
        self.stages = tuple(stages)
        self.sample_rate: int = inner.sample_rate
        self.name = str(getattr(inner, "name", type(inner).__name__))

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        for chunk in self.inner.synthesize(text, speed=speed):
            for stage in self.stages:
                chunk = stage(chunk)
            if chunk.size:
                yield chunk


def _gain(volume: float) -> Stage:
    def run(audio: Float32Array) -> Float32Array:
        return np.clip(audio * np.float32(volume), -1.0, 1.0).astype(np.float32)

    return run


def wrap(synth: Synthesizer, voice: VoiceSettings, cache_dir: Path) -> Synthesizer:
    """``synth`` with the persona's voice match, pitch, effects chain and volume applied."""
    stages: list[Stage] = []
    if voice.match is not None:
        from companion.voice.match import build_matcher

        matcher = build_matcher(
            synth, voice.match, cache_dir, strength=voice.match_strength, extra_semitones=voice.pitch_semitones
        )
        if matcher is not None:
            stages.append(matcher)
    elif voice.pitch_semitones:
        from companion.voice.world import WorldTransform

        stages.append(WorldTransform(synth.sample_rate, log_f0_shift=voice.pitch_semitones * np.log(2) / 12))
    if voice.effects:
        from companion.voice.effects import EffectChain

        stages.append(EffectChain(voice.effects, synth.sample_rate))
    if voice.volume != 1.0:
        stages.append(_gain(voice.volume))
    if not stages:
        return synth
    _log.debug("voice shaping for %s: %d stages", getattr(synth, "name", synth), len(stages))
    return ShapedSynthesizer(synth, stages)
