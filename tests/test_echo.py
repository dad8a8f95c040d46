"""Echo cancellation on real speech: SpeexDSP through ctypes, the echo gate, the delay finder.

The robot's voice is Piper's; the room is a measured-style impulse response (direct
path, reflections, RT60 0.25 s) at -6 and 0 dB; the person talking over it is a
festival voice no other test uses (tests/fixtures/bargein).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from companion.audio.echo import EchoReference, SpeexEchoCanceller, speexdsp
from companion.audio.echo_delay import DelayEstimator
from companion.audio.echo_path import EchoPath
from companion.bench.room import room_response
from companion.bench.words import wer

pytestmark = pytest.mark.slow
RATE = 16000
BLOCK = 480  # the microphone's 30 ms
CLIPS = Path(__file__).parent / "fixtures" / "bargein"

try:
    speexdsp()
except Exception as exc:  # pragma: no cover - the CI installs libspeexdsp1
    pytest.skip(f"libspeexdsp is not installed: {exc}", allow_module_level=True)


def to16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def far(piper) -> np.ndarray:
    lines = [
        "Hello, I am a small robot, and I like to talk about the stars and the planets.",
        "Do you want to hear more about the rings of Saturn?",
        "They are made of ice and rock, and they shine in the sun.",
        "I could talk about them all day long, my friend.",
    ]
    audio = np.concatenate([b for line in lines for b in piper.synthesize(line)])
    return soxr.resample(audio, piper.sample_rate, RATE).astype(np.float32)


def near_clip(n: int = 0) -> tuple[np.ndarray, str]:
    clip = json.loads((CLIPS / "manifest.json").read_text())["clips"][n]
    audio, _ = sf.read(CLIPS / clip["file"], dtype="float32")
    return audio, clip["text"]


def run_path(mic: np.ndarray, far: np.ndarray, delay_s: float = 0.0) -> tuple[np.ndarray, EchoPath]:
    """Feed the mic block by block as the daemon does: the speaker's reference first, then the mic."""
    now = 1000.0
    reference = EchoReference(clock=lambda: now)
    path = EchoPath(SpeexEchoCanceller(RATE, tail_ms=250), reference)
    out = []
    ahead = 2 * BLOCK  # a speaker is handed its audio a little before it is heard
    reference.played(far[:ahead], RATE, now)
    for i in range(0, len(mic) - BLOCK + 1, BLOCK):
        reference.played(far[i + ahead : i + ahead + BLOCK], RATE, now + (i + ahead) / RATE)
        out.append(path.clean(to16(mic[i : i + BLOCK]), now + i / RATE + delay_s))
    return np.concatenate(out), path


def voiced_runs(x: np.ndarray) -> list[int]:
    import webrtcvad

    vad = webrtcvad.Vad(2)
    runs, run = [], 0
    for i in range(0, len(x) - BLOCK + 1, BLOCK):
        if vad.is_speech(x[i : i + BLOCK].tobytes(), RATE):
            run += 1
        elif run:
            runs.append(run)
            run = 0
    return [*runs, run]


@pytest.mark.parametrize("gain_db", [-6.0, 0.0])
def test_the_filter_removes_most_of_the_robots_echo(far, gain_db):
    echo = np.convolve(far, room_response(gain_db, 40, 0.25))[: len(far)]
    canceller = SpeexEchoCanceller(RATE, tail_ms=250)
    out = np.concatenate(
        [
            canceller.process(to16(echo[i : i + BLOCK]), to16(far[i : i + BLOCK]))
            for i in range(0, len(far) - BLOCK, BLOCK)
        ]
    )
    half = len(out) // 2  # after it has learnt the room
    erle = 10 * np.log10(
        np.mean(to16(echo[half : len(out)]).astype(float) ** 2) / np.mean(out[half:].astype(float) ** 2)
    )
    assert erle > 15, f"only {erle:.1f} dB of echo removed"
    assert canceller.stats.frames == len(out) // 160


@pytest.mark.parametrize("gain_db", [-6.0, 0.0])
def test_the_robots_echo_alone_never_sounds_like_a_person(far, gain_db):
    """After the gate, no run of voiced frames long enough for a barge-in (250 ms = 9 frames)."""
    rng = np.random.default_rng(3)
    echo = np.convolve(far, room_response(gain_db, 40, 0.25))[: len(far)] + 3e-4 * rng.standard_normal(len(far))
    out, path = run_path(echo, far)
    assert path.trained
    assert max(voiced_runs(out)) < 8


def test_a_person_talking_over_the_robot_gets_through_and_is_understood(far, stt):
    near, text = near_clip(0)
    echo = np.convolve(far, room_response(-6.0, 40, 0.25))[: len(far)]
    start = int(7.0 * RATE)
    mic = echo.copy()
    mic[start : start + len(near)] += near[: len(mic) - start]
    out, _ = run_path(mic, far)
    heard = out[start : start + len(near)].astype(np.float32) / 32768
    assert max(voiced_runs(out[start : start + len(near)])) >= 9  # enough voice for a barge-in
    assert wer(text, stt.transcribe(heard)) <= 0.2


def test_the_delay_finder_locates_a_late_echo(far):
    """A sound server that holds the audio for 300 ms: the reference is read that much earlier."""
    delay = 0.3
    echo = np.concatenate([np.zeros(int(delay * RATE)), 0.5 * far])[: len(far)]
    out, path = run_path(echo, far, delay_s=0.0)
    assert path.delay.delay_s == pytest.approx(delay, abs=0.005)
    late = len(out) // 2
    residual = np.mean(out[late:].astype(float) ** 2)
    assert residual < 0.05 * np.mean(to16(echo[late : len(out)]).astype(float) ** 2)


def test_the_reference_reads_silence_where_nothing_was_played():
    now = 50.0
    ref = EchoReference(clock=lambda: now)
    tone = (0.5 * np.sin(np.arange(2205) / 22050 * 2 * np.pi * 440)).astype(np.float32)
    for k in range(5):  # 22.05 kHz blocks, one after the other, resampled as one stream
        ref.played(tone, 22050, now + 1.0 + k * 0.1)
    assert not ref.read(now, RATE // 2).any()
    heard = ref.read(now + 1.0, RATE // 2)
    assert np.count_nonzero(heard) > 0.9 * RATE // 2
    assert ref.sounding(now + 1.6) and not ref.sounding(now + 3.0)


def test_estimator_waits_for_enough_sound():
    est = DelayEstimator(RATE, window_s=0.5, every_s=0.5)
    for k in range(40):
        est.add(k * 0.03, np.zeros(BLOCK, np.int16))
    assert est.due()
    _, n = est.span()
    assert est.estimate(np.zeros(n)) is None


def test_estimator_ignores_a_peak_at_the_edge_of_its_range(far):
    """A best match at the very end of the searched lags is out of range, not a delay."""
    est = DelayEstimator(RATE, window_s=1.0, every_s=1.0, max_delay_s=0.5, min_delay_s=-0.5)
    mic = to16(0.5 * far[RATE : 2 * RATE])
    for k in range(0, len(mic), BLOCK):
        est.add(k / RATE, mic[k : k + BLOCK])
    _, n = est.span()  # ref[j] is heard 0.5 s before the mic's window starts, plus j samples
    edge = to16(0.5 * far[:n])  # mic[i] = ref[i + RATE]: the echo 0.5 s before the sound, the range's end
    assert est.estimate(edge) is None and est.estimate(edge) is None
    early = to16(0.5 * far[int(0.4 * RATE) : int(0.4 * RATE) + n])  # 0.1 s before: inside the range
    est.estimate(early)
    assert est.estimate(early) == pytest.approx(-0.1, abs=0.002)
