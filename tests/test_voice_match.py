"""Voice match on Piper: pitch, formants and timbre move toward a reference speaker, as far as
measured speaker similarity says it helps (never making the voice less like the reference)."""

from __future__ import annotations

import functools
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
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def open_loop(piper, reference: Path, cache: Path, strength: float = 1.0):
    """The full match, without calibration (what the plan alone says)."""
    from companion.voice.match import build_matcher

    return build_matcher(piper, reference, cache, strength=strength, calibrate=False)


def test_match_plan_finds_the_pitch_and_formant_shift(piper, reference: Path, tmp_path: Path):
    from companion.voice.match import plan_match, reference_profile, source_profile

    plan = plan_match(source_profile(piper, tmp_path), reference_profile(reference, tmp_path))
    assert plan.log_f0_shift * 12 / np.log(2) == pytest.approx(SHIFT, abs=1.5)  # Piper varies its pitch run to run
    assert 1.15 < plan.formant_ratio < 1.6  # +6 semitones of formant shift is x1.41


def test_matched_voice_speaks_at_the_reference_pitch(piper, reference: Path, cache_dir: Path):
    audio = np.concatenate(list(piper.synthesize(SENTENCES[0])))
    matcher = open_loop(piper, reference, cache_dir)
    assert pitch_move(audio, matcher(audio), piper.sample_rate) == pytest.approx(SHIFT, abs=1.5)


def test_match_strength_scales_the_pitch_move(piper, reference: Path, tmp_path: Path):
    audio = np.concatenate(list(piper.synthesize(SENTENCES[1])))
    moves = []
    for strength in (0.0, 0.5):
        matcher = open_loop(piper, reference, tmp_path, strength)
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


@functools.cache
def encoder():
    from companion.voice.similarity import SpeakerSimilarity

    return SpeakerSimilarity()


def similarity(voice, reference: Path, sentences=SENTENCES) -> float:
    """Mean resemblyzer cosine of ``voice`` speaking ``sentences`` to the ``reference`` speaker."""
    from companion.voice.audio import load_mono

    sim = encoder()
    target = sim.embed(*load_mono(reference))
    spoken = [np.concatenate(list(voice.synthesize(t))) for t in sentences]
    return float(np.mean([sim.cosine(sim.embed(a, voice.sample_rate), target) for a in spoken]))


@pytest.fixture(scope="module")
def resemblyzer():
    pytest.importorskip("torch", reason="speaker similarity needs torch")
    return pytest.importorskip("resemblyzer", reason="speaker similarity needs resemblyzer")


UNSEEN = ("flite:kal16", "flite:awb", "flite:rms", "flite:slt", "espeak-ng:en-us+m3")
"""Speakers no shipped model uses. rms and kal16 are male US voices close to joe (kal16 the
closest: plain similarity ~0.71); awb is Scottish, slt female, en-us+m3 formant synthesis."""
MIN_GAIN = {"flite:kal16": 0.02}
"""Required gain over plain Piper (default 0.05). For kal16 the best WORLD match measured
+0.04..+0.06 across runs (README), so it is held only to a clear gain."""


@pytest.fixture(scope="module")
def unseen_refs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import shutil
    import subprocess

    if shutil.which("flite") is None or shutil.which("espeak-ng") is None:
        pytest.skip("flite or espeak-ng is missing (scripts/system-deps.sh test)")
    folder = tmp_path_factory.mktemp("unseen")
    refs = {}
    for name in UNSEEN:
        tool, voice = name.split(":")
        path = refs[name] = folder / f"{voice}.wav"
        if tool == "flite":
            subprocess.run(["flite", "-voice", voice, "-t", REFERENCE_TEXT, "-o", str(path)], check=True)
        else:
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), REFERENCE_TEXT], check=True)
    return refs


def test_calibrated_match_gains_on_every_unseen_voice_and_never_loses(piper, unseen_refs, cache_dir: Path, resemblyzer):
    from companion.voice.similarity import SENTENCES as HELD_OUT  # the calibration speaks other sentences

    rows = []
    for voice, ref in unseen_refs.items():
        matched = wrap(piper, VoiceSettings(match=ref), cache_dir)
        rows.append((voice, similarity(piper, ref, HELD_OUT), similarity(matched, ref, HELD_OUT)))
    print(f"\n{'reference':<20}  plain  matched  gain")
    for voice, plain, moved in rows:
        print(f"{voice:<20} {plain:6.3f} {moved:8.3f} {moved - plain:+6.3f}")
    for voice, plain, moved in rows:
        assert moved >= plain + MIN_GAIN.get(voice, 0.05), voice


def test_a_reference_of_the_base_voice_itself_switches_matching_off(piper, tmp_path: Path, resemblyzer):
    joe = tmp_path / "joe.wav"
    write_wav(joe, np.concatenate(list(piper.synthesize(REFERENCE_TEXT))), piper.sample_rate)
    assert wrap(piper, VoiceSettings(match=joe), tmp_path) is piper  # nothing beats the plain voice


def test_calibration_is_cached_per_voice_and_reference(piper, unseen_refs, cache_dir: Path, resemblyzer):
    from companion.voice import cache
    from companion.voice.calibrate import fit_cache_file
    from companion.voice.match import build_matcher

    reference = unseen_refs["flite:awb"]
    assert build_matcher(piper, reference, cache_dir) is not None
    fit = fit_cache_file(piper, reference, cache_dir)
    assert fit.is_file()
    cache.save_arrays(fit, {"strengths": [0.0, 0.0, 0.0, 0.0], "scores": [0.5, 0.5]})
    assert build_matcher(piper, reference, cache_dir) is None  # read back: the cached fit says plain
