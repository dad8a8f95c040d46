"""``companion voice prepare`` and ``companion voice test``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile

from companion.cli import main
from companion.voice.audio import resample

RATE = 44100


def speech(piper, text: str) -> np.ndarray:
    audio = np.concatenate(list(piper.synthesize(text)))
    return resample(audio, piper.sample_rate, RATE)


def quiet(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(int(seconds * RATE)) * 3e-4).astype(np.float32)


@pytest.fixture(scope="module")
def raw_clip(piper, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A stereo 44.1 kHz recording: two good sentences, a short blip and one clipped sentence."""
    rng = np.random.default_rng(1)
    good_a = speech(piper, "My name is Rocky and I build things.") * 0.3
    good_b = speech(piper, "Good good good, we fix ship together.") * 0.1
    blip = speech(piper, "Hm.")[: int(0.3 * RATE)] * 0.3
    clipped = np.clip(speech(piper, "This one is far too loud.") * 8.0, -1.0, 1.0)
    parts = [
        quiet(0.5, rng),
        good_a,
        quiet(0.8, rng),
        blip,
        quiet(0.8, rng),
        clipped,
        quiet(0.8, rng),
        good_b,
        quiet(0.5, rng),
    ]
    mono = np.concatenate(parts)
    path = tmp_path_factory.mktemp("clips") / "raw.wav"
    soundfile.write(str(path), np.stack([mono, mono * 0.9], axis=1), RATE)
    return path, (good_a.size + good_b.size) / RATE


def active_dbfs(audio: np.ndarray, rate: int) -> float:
    frame = rate // 50
    n = audio.size // frame
    db = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = db[db > db.max() - 30]
    return float(10 * np.log10(np.mean(10 ** (loud / 10))))


def test_prepare_keeps_clean_speech_and_drops_short_and_clipped_parts(raw_clip, tmp_path: Path, capsys):
    raw, speech_s = raw_clip
    out = tmp_path / "reference.wav"

    assert main(["voice", "prepare", str(raw), "-o", str(out)]) == 0

    audio, rate = soundfile.read(str(out), dtype="float32")
    assert rate == 22050 and audio.ndim == 1
    printed = capsys.readouterr()
    assert "in 2 segments (dropped 1 too short, 1 clipped)" in printed.out
    usable = float(printed.out.split(": ")[1].split(" s of")[0])
    assert usable == pytest.approx(speech_s, abs=0.4)
    assert audio.size / rate == pytest.approx(usable + 0.3, abs=0.05)  # one pause between the two
    assert active_dbfs(audio, rate) == pytest.approx(-20.0, abs=2.0)
    assert np.abs(audio).max() < 0.95
    assert "XTTS needs at least 6 s" in printed.err


def test_prepare_with_enough_speech_does_not_warn(raw_clip, tmp_path: Path, capsys):
    raw, _ = raw_clip
    out = tmp_path / "reference.wav"
    assert main(["voice", "prepare", str(raw), str(raw), "-o", str(out), "--rate", "16000"]) == 0
    printed = capsys.readouterr()
    assert "in 4 segments" in printed.out
    assert "warning" not in printed.err
    assert soundfile.info(str(out)).samplerate == 16000


def test_prepare_without_speech_is_a_one_line_error(tmp_path: Path, capsys):
    silent = tmp_path / "silence.wav"
    soundfile.write(str(silent), np.zeros(RATE, np.float32), RATE)
    assert main(["voice", "prepare", str(silent), "-o", str(tmp_path / "ref.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("companion: no usable speech") and err.count("\n") == 1
    assert not (tmp_path / "ref.wav").exists()


def test_prepare_of_a_missing_clip_names_it(tmp_path: Path, capsys):
    assert main(["voice", "prepare", str(tmp_path / "gone.wav"), "-o", str(tmp_path / "r.wav")]) == 1
    assert "gone.wav not found" in capsys.readouterr().err


def test_voice_test_speaks_the_sentence_set_and_scores_it(raw_clip, tmp_path: Path, capsys, isolated_home):
    pytest.importorskip("pyworld")
    pytest.importorskip("pedalboard")
    raw, _ = raw_clip
    personas = tmp_path / "personas"
    (personas / "voices").mkdir(parents=True)
    assert main(["voice", "prepare", str(raw), "-o", str(personas / "voices" / "ref.wav")]) == 0
    (personas / "robo.yaml").write_text(
        "name: Robo\nsystem_prompt: You are Robo.\n"
        "voice:\n  match: voices/ref.wav\n  effects:\n    - bandpass: {low_hz: 200, high_hz: 6000}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"personas_dir: {personas}\nstate_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    capsys.readouterr()

    rc = main(["voice", "test", "--config", str(config), "--persona", "robo", "-o", str(tmp_path / "out")])

    printed = capsys.readouterr()
    wavs = sorted((tmp_path / "out").glob("*.wav"))
    assert [w.name for w in wavs] == [f"{i:02d}.wav" for i in range(1, 11)]
    assert all(soundfile.info(str(w)).duration > 0.8 for w in wavs)
    has_encoder = importlib.util.find_spec("resemblyzer") and importlib.util.find_spec("torch")
    if has_encoder:
        assert rc == 0
        line = next(x for x in printed.out.splitlines() if x.startswith("similarity to"))
        assert 0.3 < float(line.split("mean ")[1].split()[0]) <= 1.0
    else:
        assert rc == 1 and "resemblyzer" in printed.err
