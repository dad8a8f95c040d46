"""A persona's effects chain (``voice.effects``): declarative, validated, run by pedalboard.

Each list item names one effect and its parameters::

    effects:
      - formant: {ratio: 1.08}
      - bandpass: {low_hz: 280, high_hz: 3600}
      - chorus: {rate_hz: 0.7, depth: 0.2, mix: 0.3}
      - bitcrush: {bit_depth: 11}
      - reverb: {room_size: 0.12, wet: 0.08}

Unknown effects and bad parameters are one-line ``ConfigError`` s naming the key
(``voice.effects[1].chorus.rate_hz: ...``) because the steps are settings dataclasses.
pedalboard and pyworld are imported only when a chain is built.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from companion.messages import Float32Array
from companion.settings import between, setting

_log = logging.getLogger(__name__)

Process = Callable[[Float32Array], Float32Array]


@dataclass(frozen=True)
class PitchFx:
    semitones: float = setting(0.0, check=between(-12, 12), doc="pitch shift, formants move too")


@dataclass(frozen=True)
class FormantFx:
    ratio: float = setting(1.0, check=between(0.7, 1.4), doc=">1: smaller vocal tract (brighter)")


@dataclass(frozen=True)
class FilterFx:
    cutoff_hz: float = setting(check=between(20, 20000), doc="-3 dB frequency")


@dataclass(frozen=True)
class BandpassFx:
    low_hz: float = setting(300.0, check=between(20, 20000))
    high_hz: float = setting(3400.0, check=between(20, 20000), doc="must be above low_hz")


@dataclass(frozen=True)
class ChorusFx:
    rate_hz: float = setting(1.0, check=between(0, 20))
    depth: float = setting(0.25, check=between(0, 1))
    centre_delay_ms: float = setting(7.0, check=between(0.5, 50))
    feedback: float = setting(0.0, check=between(-0.95, 0.95))
    mix: float = setting(0.5, check=between(0, 1))


@dataclass(frozen=True)
class RingModFx:
    freq_hz: float = setting(30.0, check=between(1, 5000), doc="modulator frequency")
    mix: float = setting(0.5, check=between(0, 1))


@dataclass(frozen=True)
class BitcrushFx:
    bit_depth: float = setting(8.0, check=between(2, 24))


@dataclass(frozen=True)
class LofiFx:
    rate_hz: float = setting(8000.0, check=between(2000, 48000), doc="resample down to this and back")


@dataclass(frozen=True)
class DistortionFx:
    drive_db: float = setting(15.0, check=between(0, 60))


@dataclass(frozen=True)
class ReverbFx:
    room_size: float = setting(0.3, check=between(0, 1))
    damping: float = setting(0.5, check=between(0, 1))
    wet: float = setting(0.2, check=between(0, 1))
    dry: float = setting(0.8, check=between(0, 1))


@dataclass(frozen=True)
class DelayFx:
    seconds: float = setting(0.12, check=between(0.001, 2))
    feedback: float = setting(0.2, check=between(0, 0.95))
    mix: float = setting(0.3, check=between(0, 1))


@dataclass(frozen=True)
class PhaserFx:
    rate_hz: float = setting(1.0, check=between(0, 20))
    depth: float = setting(0.5, check=between(0, 1))
    mix: float = setting(0.5, check=between(0, 1))


@dataclass(frozen=True)
class CompressorFx:
    threshold_db: float = setting(-20.0, check=between(-60, 0))
    ratio: float = setting(3.0, check=between(1, 30))


@dataclass(frozen=True)
class GainFx:
    db: float = setting(0.0, check=between(-40, 24))


@dataclass(frozen=True)
class GsmFx:
    """GSM full-rate codec: telephone-grade "not as clean" speech."""


@dataclass(frozen=True)
class Effect:
    """One step of the chain: exactly one of these keys, e.g. ``- chorus: {mix: 0.3}``."""

    pitch: PitchFx | None = setting(None)
    formant: FormantFx | None = setting(None)
    highpass: FilterFx | None = setting(None)
    lowpass: FilterFx | None = setting(None)
    bandpass: BandpassFx | None = setting(None)
    chorus: ChorusFx | None = setting(None)
    ring_mod: RingModFx | None = setting(None)
    bitcrush: BitcrushFx | None = setting(None)
    lofi: LofiFx | None = setting(None)
    distortion: DistortionFx | None = setting(None)
    reverb: ReverbFx | None = setting(None)
    delay: DelayFx | None = setting(None)
    phaser: PhaserFx | None = setting(None)
    compressor: CompressorFx | None = setting(None)
    gain: GainFx | None = setting(None)
    gsm: GsmFx | None = setting(None)

    def __post_init__(self) -> None:
        chosen = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
        if len(chosen) != 1:
            names = ", ".join(f.name for f in dataclasses.fields(self))
            got = ", ".join(chosen) if chosen else "none (write e.g. 'gsm: {}' for an effect's defaults)"
            raise ValueError(f"each item needs exactly one effect ({names}); got {got}")
        if self.bandpass is not None and self.bandpass.low_hz >= self.bandpass.high_hz:
            b = self.bandpass
            raise ValueError(f"bandpass: low_hz ({b.low_hz:g}) must be below high_hz ({b.high_hz:g})")

    @property
    def name(self) -> str:
        return next(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None)

    @property
    def params(self) -> object:
        return getattr(self, self.name)


def tail_seconds(effects: tuple[Effect, ...]) -> float:
    """How long the chain rings on after the input stops (reverb and delay tails)."""
    tail = 0.0
    for step in effects:
        p = step.params
        if isinstance(p, ReverbFx) and p.wet > 0:
            tail += 0.2 + 1.3 * p.room_size
        elif isinstance(p, DelayFx) and p.mix > 0:
            repeats = 1 + int(np.log(0.01) / np.log(max(p.feedback, 0.01)))
            tail += p.seconds * min(repeats, 8)
    return min(tail, 3.0)


class EffectChain:
    """The persona's effects, run on one sentence at a time.

    Consecutive pedalboard effects run as one ``Pedalboard``; ``formant`` (WORLD) and
    ``ring_mod`` run between them. Each sentence is processed whole (with room for the
    reverb/delay tail) so every chunk the synthesizer yields comes out as one chunk.
    """

    def __init__(self, effects: tuple[Effect, ...], sample_rate: int) -> None:
        self.effects = effects
        self.sample_rate = sample_rate
        self._tail = int(tail_seconds(effects) * sample_rate)
        self._steps: list[Process] = []
        board: list[object] = []
        for step in effects:
            p = step.params
            if isinstance(p, FormantFx | RingModFx):
                if board:
                    self._steps.append(_pedalboard_step(board, sample_rate))
                    board = []
                self._steps.append(
                    _formant_step(p, sample_rate) if isinstance(p, FormantFx) else _ring_mod_step(p, sample_rate)
                )
            else:
                board.extend(_plugins(step.name, p))
        if board:
            self._steps.append(_pedalboard_step(board, sample_rate))

    def __call__(self, audio: Float32Array) -> Float32Array:
        if not self._steps or audio.size == 0:
            return audio
        out = np.concatenate([audio, np.zeros(self._tail, np.float32)]) if self._tail else audio
        for process in self._steps:
            out = process(out)
        if self._tail:
            out = _trim_tail(out, len(audio))
        return np.asarray(out, dtype=np.float32)


def _trim_tail(audio: Float32Array, keep: int, floor_db: float = -60.0) -> Float32Array:
    """Drop the padded tail once it has rung down below ``floor_db``."""
    tail = np.abs(audio[keep:])
    loud = np.nonzero(tail > 10 ** (floor_db / 20))[0]
    end = keep + (int(loud[-1]) + 1 if loud.size else 0)
    return audio[:end]


def _plugins(name: str, p: object) -> list[object]:
    import pedalboard as pb

    if isinstance(p, PitchFx):
        return [pb.PitchShift(semitones=p.semitones)]
    if isinstance(p, FilterFx):
        return [pb.HighpassFilter(p.cutoff_hz) if name == "highpass" else pb.LowpassFilter(p.cutoff_hz)]
    if isinstance(p, BandpassFx):
        return [pb.HighpassFilter(p.low_hz), pb.LowpassFilter(p.high_hz)]
    if isinstance(p, ChorusFx):
        return [pb.Chorus(p.rate_hz, p.depth, p.centre_delay_ms, p.feedback, p.mix)]
    if isinstance(p, BitcrushFx):
        return [pb.Bitcrush(p.bit_depth)]
    if isinstance(p, LofiFx):
        return [pb.Resample(p.rate_hz, quality=pb.Resample.Quality.ZeroOrderHold)]
    if isinstance(p, DistortionFx):
        return [pb.Distortion(p.drive_db)]
    if isinstance(p, ReverbFx):
        return [pb.Reverb(room_size=p.room_size, damping=p.damping, wet_level=p.wet, dry_level=p.dry)]
    if isinstance(p, DelayFx):
        return [pb.Delay(p.seconds, p.feedback, p.mix)]
    if isinstance(p, PhaserFx):
        return [pb.Phaser(rate_hz=p.rate_hz, depth=p.depth, mix=p.mix)]
    if isinstance(p, CompressorFx):
        return [pb.Compressor(threshold_db=p.threshold_db, ratio=p.ratio)]
    if isinstance(p, GainFx):
        return [pb.Gain(p.db)]
    if isinstance(p, GsmFx):
        return [pb.GSMFullRateCompressor()]
    raise AssertionError(f"effect {name} has no plugin")  # pragma: no cover - Effect lists them all


def _pedalboard_step(plugins: list[object], sample_rate: int) -> Process:
    import pedalboard as pb

    board = pb.Pedalboard(plugins)  # type: ignore[arg-type]

    def run(audio: Float32Array) -> Float32Array:
        return np.asarray(board(audio, sample_rate, reset=True), dtype=np.float32)

    return run


def _formant_step(p: FormantFx, sample_rate: int) -> Process:
    from companion.voice.world import WorldTransform

    transform = WorldTransform(sample_rate, formant_ratio=p.ratio)
    return transform


def _ring_mod_step(p: RingModFx, sample_rate: int) -> Process:
    def run(audio: Float32Array) -> Float32Array:
        t = np.arange(audio.size, dtype=np.float64) / sample_rate
        carrier = np.sin(2 * np.pi * p.freq_hz * t).astype(np.float32)
        return (1 - p.mix) * audio + p.mix * audio * carrier

    return run
