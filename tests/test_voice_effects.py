"""The persona's voice shaping: effects chain settings, effects, and streaming through wrap()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.settings import ConfigError, build
from companion.tts.voice import VoiceSettings
from companion.voice import wrap


def load_voice(data: dict) -> VoiceSettings:
    return build(VoiceSettings, data, source="rocky.yaml", prefix="voice")


@pytest.mark.parametrize(
    ("effects", "message"),
    [
        ([{"chorous": {}}], "rocky.yaml: voice.effects[0].chorous: unknown key; did you mean 'chorus'?"),
        ([{"gsm": {}}, {"chorus": {"rate_hz": 50}}], "voice.effects[1].chorus.rate_hz: expected a number from 0 to 20"),
        ([{"reverb": {"size": 0.3}}], "voice.effects[0].reverb.size: unknown key"),
        ([{"bitcrush": {"bit_depth": "lots"}}], "voice.effects[0].bitcrush.bit_depth: expected a number, got 'lots'"),
        ([{"chorus": {}, "gsm": {}}], "voice.effects[0]: each item needs exactly one effect"),
        ([{"gsm": None}], "got none (write e.g. 'gsm: {}'"),
        ([{"bandpass": {"low_hz": 3000, "high_hz": 300}}], "voice.effects[0]: bandpass: low_hz (3000)"),
        ("chorus", "voice.effects: expected a list"),
    ],
)
def test_bad_effects_are_one_line_errors_naming_the_key(effects: object, message: str):
    with pytest.raises(ConfigError) as err:
        load_voice({"effects": effects})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_effects_list_keeps_its_order_and_defaults():
    voice = load_voice({"effects": [{"bandpass": {"low_hz": 250}}, {"gsm": {}}, {"reverb": {"wet": 0.1}}]})
    assert [e.name for e in voice.effects] == ["bandpass", "gsm", "reverb"]
    assert voice.effects[0].bandpass is not None and voice.effects[0].bandpass.high_hz == 3400.0


def test_relative_clip_paths_are_taken_from_the_persona_directory(tmp_path: Path):
    voice = load_voice({"match": "voices/rocky.wav", "reference": ["/abs/a.wav", "b.wav"]}).resolved(tmp_path)
    assert voice.match == tmp_path / "voices" / "rocky.wav"
    assert voice.reference == (Path("/abs/a.wav"), tmp_path / "b.wav")


def test_plain_voice_is_not_wrapped(piper, tmp_path: Path):
    assert wrap(piper, VoiceSettings(), tmp_path) is piper


def _band_energy(audio: np.ndarray, rate: int, lo: float, hi: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / rate)
    return float(spectrum[(freqs >= lo) & (freqs < hi)].sum() / spectrum.sum())


def test_telephone_band_limits_the_voice_and_streams_per_sentence(piper, tmp_path: Path):
    pytest.importorskip("pedalboard")
    sentences = ["Hello there.", "I am a robot from far away.", "Good good good."]
    plain = [b for s in sentences for b in piper.synthesize(s)]
    voice = load_voice({"effects": [{"bandpass": {"low_hz": 400, "high_hz": 3000}}, {"gsm": {}}]})
    synth = wrap(piper, voice, tmp_path)
    shaped = [b for s in sentences for b in synth.synthesize(s)]

    assert synth.sample_rate == piper.sample_rate
    assert len(shaped) == len(plain) == 3, "one processed chunk per sentence"
    a, b = np.concatenate(plain), np.concatenate(shaped)
    assert _band_energy(a, piper.sample_rate, 4500, 11000) > 8 * _band_energy(b, piper.sample_rate, 4500, 11000)
    assert _band_energy(b, piper.sample_rate, 0, 200) < 0.5 * _band_energy(a, piper.sample_rate, 0, 200)


def test_reverb_rings_on_after_the_sentence(piper, tmp_path: Path):
    pytest.importorskip("pedalboard")
    (plain,) = piper.synthesize("Amaze amaze amaze.")
    synth = wrap(piper, load_voice({"effects": [{"reverb": {"room_size": 0.8, "wet": 0.5}}]}), tmp_path)
    (wet,) = synth.synthesize("Amaze amaze amaze.")
    assert wet.size > plain.size + 0.05 * piper.sample_rate


def test_ring_mod_and_bitcrush_change_the_sound_but_keep_the_length(piper):
    pytest.importorskip("pedalboard")
    from companion.voice.effects import EffectChain

    (plain,) = piper.synthesize("Question?")
    voice = load_voice({"effects": [{"ring_mod": {"freq_hz": 40, "mix": 0.5}}, {"bitcrush": {"bit_depth": 6}}]})
    shaped = EffectChain(voice.effects, piper.sample_rate)(plain)
    assert shaped.size == plain.size and shaped.dtype == np.float32
    assert np.abs(shaped - plain).mean() > 0.1 * np.abs(plain).mean()
    assert len(np.unique(np.round(shaped * 2**5))) <= 2**6 + 1


def test_volume_scales_the_voice(piper, tmp_path: Path):
    (plain,) = piper.synthesize("Quiet now.")
    (soft,) = wrap(piper, VoiceSettings(volume=0.5), tmp_path).synthesize("Quiet now.")
    # Piper normalises every sentence to a peak of 1.0, so peaks compare exactly even though
    # its sampling noise makes two runs differ in detail (RMS ratios drifted by up to 0.06)
    ratio = np.max(np.abs(soft)) / np.max(np.abs(plain))
    assert ratio == pytest.approx(0.5, abs=0.01)
