"""Voice match on Piper: pitch, formants and timbre move toward a reference speaker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.tts.voice import VoiceSettings
from companion.voice import wrap
from companion.voice.audio import write_wav

pytest.importorskip("pyworld", reason="voice match needs pyworld (and setuptools<81)")
pedalboard = pytest.importorskip("pedalboard")

REFERENCE_TEXT = (
    "Once upon a time a small grey robot lived at the edge of a busy harbour. "
    "Every morning it counted the boats and told stories to anyone who stopped to listen."
)
SENTENCES = (
    "Hello there, it is good to finally meet you.",
    "Can you hand me that small blue box on the table?",
    "We need to leave before the sun goes down.",
    "How many stars do you think are out there tonight?",
)
SHIFT = 6.0


def pitch_move(before: np.ndarray, after: np.ndarray, rate: int) -> float:
    """Median pitch change in semitones over the frames voiced in both (same-length signals)."""
    from companion.voice.world import analyse

    f0a, f0b = analyse(before, rate).f0, analyse(after, rate).f0
    n = min(f0a.size, f0b.size)
    both = (f0a[:n] > 0) & (f0b[:n] > 0)
    return float(np.median(12 * np.log2(f0b[:n][both] / f0a[:n][both])))


@pytest.fixture(scope="module")
def piper():
    """A fresh voice with onnxruntime's random state seeded, so Piper's sampling noise (which
    moves pitch statistics by a semitone or more) does not depend on what ran before."""
    import onnxruntime

    from companion.tts.piper import PiperSynthesizer

    onnxruntime.set_seed(7)
    return PiperSynthesizer()


@pytest.fixture(scope="module")
def reference(piper, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another 'speaker': joe re-pitched +6 semitones by Rubber Band with formants moved too."""
    joe = np.concatenate(list(piper.synthesize(REFERENCE_TEXT)))
    other = pedalboard.time_stretch(
        joe[None, :], piper.sample_rate, pitch_shift_in_semitones=SHIFT, preserve_formants=False
    )[0]
    path = tmp_path_factory.mktemp("ref") / "other.wav"
    write_wav(path, other, piper.sample_rate)
    return path


@pytest.fixture(scope="module")
def matched(piper, reference: Path, tmp_path_factory: pytest.TempPathFactory):
    return wrap(piper, VoiceSettings(match=reference), tmp_path_factory.mktemp("cache"))


def test_match_plan_finds_the_pitch_and_formant_shift(piper, reference: Path, tmp_path: Path):
    from companion.voice.match import plan_match, reference_profile, source_profile

    plan = plan_match(source_profile(piper, tmp_path), reference_profile(reference, tmp_path))
    assert plan.log_f0_shift * 12 / np.log(2) == pytest.approx(SHIFT, abs=1.5)  # Piper varies its pitch run to run
    assert 1.15 < plan.formant_ratio < 1.6  # +6 semitones of formant shift is x1.41


def test_matched_voice_speaks_at_the_reference_pitch(piper, matched):
    audio = np.concatenate(list(piper.synthesize(SENTENCES[0])))
    (matcher,) = matched.stages
    assert pitch_move(audio, matcher(audio), piper.sample_rate) == pytest.approx(SHIFT, abs=1.5)


def test_match_strength_scales_the_pitch_move(piper, reference: Path, tmp_path: Path):
    audio = np.concatenate(list(piper.synthesize(SENTENCES[1])))
    moves = []
    for strength in (0.0, 0.5):
        synth = wrap(piper, VoiceSettings(match=reference, match_strength=strength), tmp_path)
        (matcher,) = synth.stages  # type: ignore[attr-defined]
        moves.append(pitch_move(audio, matcher(audio), piper.sample_rate))
    assert moves[0] == pytest.approx(0.0, abs=0.3)
    assert moves[1] == pytest.approx(SHIFT / 2, abs=1.0)


def test_reference_analysis_is_cached_by_content(reference: Path, tmp_path: Path):
    from companion.voice import cache
    from companion.voice.match import reference_profile

    first = reference_profile(reference, tmp_path)
    (cached,) = (tmp_path / "voice").glob("ref-*.npz")
    marked = first.arrays()
    marked["scalars"] = marked["scalars"].copy()
    marked["scalars"][0] = 1.2345
    cache.save_arrays(cached, marked)
    assert reference_profile(reference, tmp_path).log_f0_median == 1.2345

    copy = tmp_path / "edited.wav"
    copy.write_bytes(reference.read_bytes()[:-2000])
    assert reference_profile(copy, tmp_path).log_f0_median != 1.2345


def test_missing_reference_is_a_user_error(piper, tmp_path: Path):
    from companion.errors import UserError

    with pytest.raises(UserError, match=r"voice\.match: reference clip .*nowhere\.wav not found"):
        wrap(piper, VoiceSettings(match=tmp_path / "nowhere.wav"), tmp_path)


def test_matched_voice_is_closer_to_the_reference_speaker(piper, matched, reference: Path):
    pytest.importorskip("torch", reason="speaker similarity needs torch")
    pytest.importorskip("resemblyzer", reason="speaker similarity needs resemblyzer")
    from companion.voice.audio import load_mono
    from companion.voice.similarity import SpeakerSimilarity

    sim = SpeakerSimilarity()
    target = sim.embed(*load_mono(reference))
    plain = [
        sim.cosine(sim.embed(np.concatenate(list(piper.synthesize(t))), piper.sample_rate), target) for t in SENTENCES
    ]
    moved = [
        sim.cosine(sim.embed(np.concatenate(list(matched.synthesize(t))), matched.sample_rate), target)
        for t in SENTENCES
    ]
    assert np.mean(moved) > np.mean(plain) + 0.05
