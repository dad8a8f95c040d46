"""What ``transcribe`` and ``run --input`` say about recordings that hold no usable speech (issue 15).

Each used to exit 0 with no message (silence, one sample, NaN) or crash with a
traceback (a header saying 1 Hz). Now: a one-line error naming the file and what
was found, before any model loads, or a warning (clipping) and the transcript.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fuzz.fuzzkit import wav_bytes

from companion.audio.io import read_audio, write_wav

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def companion(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "companion", *args], capture_output=True, text=True, timeout=120)


def write(path: Path, samples: np.ndarray, rate: int = 16000, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.stderr.strip().splitlines()[-1]


def test_a_header_saying_1_hz_is_a_clear_error_for_run_and_transcribe(tmp_path: Path):
    path = tmp_path / "one_hz.wav"
    path.write_bytes(wav_bytes(rate=1, data=b"\1\0" * 1000))
    for args in (("transcribe", str(path)), ("run", "--input", str(path), "--output-dir", str(tmp_path), "--fast")):
        proc = companion(*args)
        assert proc.returncode == 1
        assert (
            last_line(proc)
            == f"companion: {path}: sample rate 1 Hz; expected 4000 to 192000 Hz (is the header damaged?)"
        )


def test_nan_samples_are_a_clear_error(tmp_path: Path):
    samples = np.zeros(16000, dtype=np.float32)
    samples[100:110] = np.nan
    path = write(tmp_path / "nan.wav", samples, subtype="FLOAT")
    proc = companion("transcribe", str(path))
    assert proc.returncode == 1
    assert last_line(proc) == f"companion: {path}: 10 of 16000 samples are NaN or infinite; the file is damaged"


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(1, dtype=np.float32), "no speech in {}: it is only 0.1 ms long (1 samples); every sample is zero"),
        (np.zeros(600 * 16000, dtype=np.float32), "no speech in {}: every sample is zero"),
        (np.full(16000 * 5, 1e-5, dtype=np.float32), "no speech in {}: it is silent (peak -100 dBFS over 5.0 s)"),
    ],
    ids=["single-sample", "ten-minutes-of-silence", "faint-hum"],
)
def test_recordings_that_cannot_hold_speech_say_so_before_loading_models(tmp_path: Path, samples, message):
    path = write(tmp_path / "rec.wav", samples, subtype="FLOAT")
    for args in (("transcribe", str(path)), ("run", "--input", str(path), "--output-dir", str(tmp_path), "--fast")):
        proc = companion(*args)
        assert proc.returncode == 1
        assert last_line(proc) == "companion: " + message.format(path)


def test_a_clipped_recording_is_transcribed_with_a_warning(tmp_path: Path):
    samples, rate = read_audio(FIXTURES / "utt_01.wav")
    loud = np.clip(samples * 40.0, -1.0, 1.0)
    path = write(tmp_path / "clipped.wav", loud, rate)
    proc = companion("transcribe", str(path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip()
    assert f"{path}: " in proc.stderr and "% of the samples are clipped at full scale" in proc.stderr


def test_noise_without_words_says_no_speech(tmp_path: Path):
    rng = np.random.default_rng(0)
    path = write(tmp_path / "noise.wav", (rng.standard_normal(16000 * 3) * 0.002).astype(np.float32))
    proc = companion("transcribe", str(path))
    assert proc.returncode == 1
    assert last_line(proc) == f"companion: no speech in {path} (nothing recognised in 3.0 s of audio)"


def test_a_wav_appears_whole_or_not_at_all(tmp_path: Path):
    samples = np.sin(np.linspace(0, 600, 16000)).astype(np.float32) * 0.5
    write_wav(tmp_path / "turn-001.wav", samples, 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["turn-001.wav"]  # nothing half-written left beside it
    back, rate = sf.read(tmp_path / "turn-001.wav", dtype="float32")
    assert rate == 16000 and len(back) == 16000
    write_wav(tmp_path / "ref.flac", samples, 16000)  # the format still follows the name
    assert sf.info(tmp_path / "ref.flac").format == "FLAC"
    with pytest.raises(ValueError, match="Unknown format"):  # soundfile says so, as before
        write_wav(tmp_path / "out.nope", samples, 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.flac", "turn-001.wav"]
