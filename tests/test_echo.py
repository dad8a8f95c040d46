"""Echo cancellation on real speech: SpeexDSP through ctypes, the echo gate, the delay finder.

The robot's voice is Piper's; the room is a measured-style impulse response (direct
path, reflections, RT60 0.25 s) at -6 and 0 dB; the person talking over it is a
festival voice no other test uses (tests/fixtures/bargein).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

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
def far() -> np.ndarray:
    """The robot (Piper joe) saying four lines, recorded once (scripts/make_bargein_fixtures.py):
    Piper samples its noise anew each time, and these tests should hear the same robot each run."""
    robot = json.loads((CLIPS / "manifest.json").read_text())["robot"]
    audio, _ = sf.read(CLIPS / robot["file"], dtype="float32")
    return np.asarray(audio, dtype=np.float32)


def near_clip(n: int = 0) -> tuple[np.ndarray, str]:
    clip = json.loads((CLIPS / "manifest.json").read_text())["clips"][n]
    audio, _ = sf.read(CLIPS / clip["file"], dtype="float32")
    return audio, clip["text"]


def run_path(
    mic: np.ndarray,
    far: np.ndarray,
    delay_s: float = 0.0,
    *,
    then: Callable[[EchoPath, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, EchoPath]:
    """Feed the mic block by block as the daemon does: the speaker's reference first, then the mic
    (``then`` sees the path and each cleaned block)."""
    now = 1000.0
    reference = EchoReference(clock=lambda: now)
    path = EchoPath(SpeexEchoCanceller(RATE, tail_ms=250), reference)
    out = []
    ahead = 2 * BLOCK  # a speaker is handed its audio a little before it is heard
    reference.played(far[:ahead], RATE, now)
    for i in range(0, len(mic) - BLOCK + 1, BLOCK):
        reference.played(far[i + ahead : i + ahead + BLOCK], RATE, now + (i + ahead) / RATE)
        out.append(path.clean(to16(mic[i : i + BLOCK]), now + i / RATE + delay_s))
        if then is not None:
            then(path, out[-1])
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


def test_a_stronger_match_elsewhere_is_no_move_while_the_echo_is_still_where_it_was(far):
    """A voice over the echo, or a reflection, can win the cross-correlation a few ms off the
    echo; the echo has moved only if the place it was is empty."""
    est = DelayEstimator(RATE, max_delay_s=0.3, min_delay_s=0.0)
    n = RATE // 2
    ref = to16(0.5 * far[: n + int(0.3 * RATE)])  # starts 0.3 s before the microphone's window

    def heard_after(delay_s: float) -> np.ndarray:  # mic[i] = ref[i + 0.3 s - delay]
        start = int((0.3 - delay_s) * RATE)
        return ref[start : start + n].astype(np.float64)

    both = to16((0.8 * heard_after(0.040) + heard_after(0.053)) / 32768)
    assert est.peak(both, ref)[0] == pytest.approx(0.053, abs=0.001)  # the stronger one wins...
    assert est.peak(both, ref, still_at=0.040) is None  # ...but the echo is still at 40 ms
    moved = to16(heard_after(0.053) / 32768)
    assert est.peak(moved, ref, still_at=0.040)[0] == pytest.approx(0.053, abs=0.001)  # a real move


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


def test_the_reference_places_blocks_by_counting_samples_not_by_their_jittery_moments():
    """A speaker whose callbacks report their moment 5-45 ms off, saw-toothing as on PulseAudio:
    every sample still lands exactly one after the other (a wandering reference undoes the filter)."""
    now = 10.0
    ref = EchoReference(clock=lambda: now)
    signal = np.random.default_rng(1).integers(-20000, 20000, 8 * RATE).astype(np.int16)
    jitter = 0.005 + 0.04 * ((np.arange(len(signal) // 320) * 0.37) % 1.0)
    for k in range(len(signal) // 320):
        block = signal[k * 320 : (k + 1) * 320].astype(np.float32) / 32767
        ref.played(block, RATE, now + k * 0.02 + jitter[k])
    start = now + jitter[0]
    assert np.array_equal(ref.read(start + 2.0, 4 * RATE), signal[2 * RATE : 6 * RATE])


def test_the_microphone_timeline_counts_samples_from_its_first_block():
    from companion.audio.sources import MicSource

    mic = MicSource(rate=RATE)
    arrivals = 100.0 + np.arange(200) * 0.03 + np.random.default_rng(2).uniform(0, 0.04, 200)
    stamps = [mic._capture_time(float(t), BLOCK) for t in arrivals]
    assert stamps == pytest.approx(arrivals[0] + np.arange(200) * BLOCK / RATE, abs=1e-9)
    assert mic._capture_time(float(arrivals[0]) - 1.0, BLOCK) == pytest.approx(arrivals[0] - 1.0)  # before: anew


def test_a_starved_microphone_keeps_its_count_and_one_that_lost_samples_starts_again():
    """A busy CPU delays the callbacks 1.5 s, then the backlog comes in a burst: those samples
    were captured when the count says. Samples lost without a word (every block of a second
    arrives 0.5 s later than counted) move the count by that much."""
    from companion.audio.sources import MicSource

    step = BLOCK / RATE
    mic = MicSource(rate=RATE)
    start = 100.0
    stamps = [mic._capture_time(start + k * step, BLOCK) for k in range(100)]
    stall = start + 100 * step + 1.5  # 50 blocks captured meanwhile, all delivered at once
    stamps += [mic._capture_time(stall + k * 0.0005, BLOCK) for k in range(50)]
    stamps += [mic._capture_time(start + k * step + 0.01, BLOCK) for k in range(150, 300)]
    assert stamps == pytest.approx(start + np.arange(300) * step, abs=1e-9)

    lost = start + 300 * step + 0.5  # from here on, everything arrives half a second late
    moved = [mic._capture_time(lost + k * step, BLOCK) for k in range(60)]
    assert moved[0] == pytest.approx(start + 300 * step)  # a late block alone: counted on
    assert moved[-1] == pytest.approx(lost + 59 * step, abs=1e-6)  # a second of them: moved


def test_an_echo_that_jumps_within_the_filter_is_followed_at_once_without_learning_the_room_again(far):
    """An underrun somewhere delays the echo by 20 ms from then on. The filter stops removing it;
    within 90 ms the reference is read 20 ms earlier, so what the filter learnt fits again: no
    reset, the gate closed (half-duplex) only until the filter has shown it works again."""
    far = np.concatenate([far, far])
    half = len(far) // 2
    echo = np.zeros(len(far))
    echo[int(0.05 * RATE) : half] = 0.5 * far[: half - int(0.05 * RATE)]
    echo[half + int(0.07 * RATE) :] = 0.5 * far[half : len(far) - int(0.07 * RATE)]
    resets = []
    trust: list[bool] = []
    real_reset = SpeexEchoCanceller.reset

    def counting_reset(self: SpeexEchoCanceller) -> None:
        resets.append(1)
        real_reset(self)

    SpeexEchoCanceller.reset = counting_reset  # type: ignore[method-assign]
    try:
        out, path = run_path(echo, far, then=lambda p, _: trust.append(p.trained))
    finally:
        SpeexEchoCanceller.reset = real_reset  # type: ignore[method-assign]
    assert path.delay.delay_s == pytest.approx(0.07, abs=0.002)
    assert len(resets) == 1  # when the delay was first found
    assert path.shift_s == pytest.approx(0.02, abs=0.0005)  # the reference follows the echo
    after = trust[half // BLOCK :]
    assert trust[half // BLOCK - 1] and not all(after) and after[-1]  # distrusted, then trusted again
    late = len(out) - len(out) // 6
    residual = np.mean(out[late:].astype(float) ** 2)
    assert residual < 0.05 * np.mean(to16(echo[late : len(out)]).astype(float) ** 2)


def test_estimator_moves_a_known_delay_far_only_when_four_looks_agree(far):
    est = DelayEstimator(RATE, window_s=1.0, every_s=1.0, max_delay_s=0.5, min_delay_s=-0.5)
    mic = to16(0.5 * far[RATE : 2 * RATE])
    for k in range(0, len(mic), BLOCK):
        est.add(k / RATE, mic[k : k + BLOCK])
    _, n = est.span()  # ref[j] is heard 0.5 s before the mic's window starts: delay = 0.5 s - offset

    def heard(delay: float) -> np.ndarray:
        offset = int((0.5 - delay) * RATE)
        return to16(0.5 * far[RATE - offset : RATE - offset + n])

    est.estimate(heard(0.1))
    assert est.estimate(heard(0.1)) == pytest.approx(0.1, abs=0.002)
    assert est.estimate(heard(0.13)) == pytest.approx(0.1, abs=0.002)  # near: two looks move it
    assert est.estimate(heard(0.13)) == pytest.approx(0.13, abs=0.002)
    for _ in range(3):  # far (a chance match after a barge-in, say): not yet
        assert est.estimate(heard(-0.3)) == pytest.approx(0.13, abs=0.002)
    assert est.estimate(heard(-0.3)) == pytest.approx(-0.3, abs=0.002)


class BargeIns:
    """What the listen stage does with the cleaned blocks: 250 ms of voice (9 frames in a row
    here) is a barge-in unless the path says it is its own echo."""

    def __init__(self) -> None:
        import webrtcvad

        self.vad = webrtcvad.Vad(2)
        self.run = 0
        self.taken: list[int] = []  # block index of each barge-in
        self.refused: list[int] = []
        self.block = 0

    def __call__(self, path: EchoPath, out: np.ndarray) -> None:
        self.block += 1
        self.run = self.run + 1 if self.vad.is_speech(out.tobytes(), RATE) else 0
        if self.run >= 9:
            (self.refused if path.is_echo() else self.taken).append(self.block)
            self.run = 0


@pytest.mark.parametrize("step_ms", [-120, 200])
def test_an_echo_that_jumps_is_never_taken_for_a_person(far, step_ms):
    """An underrun moves the echo 200 ms later (or a restart 120 ms earlier) than the filter
    learnt it: what leaks past the gate is recognised as echo, and the robot never interrupts itself."""
    far = np.concatenate([far, far])
    step = int(step_ms / 1000 * RATE)
    base = int(0.04 * RATE)
    echo = np.zeros(len(far))
    half = len(far) // 2
    room = np.convolve(far, room_response(-6.0, 0, 0.25))[: len(far)]
    echo[base:half] = room[: half - base]
    n = min(len(far) - half - base - step, len(far) - half)
    echo[half + base + step : half + base + step + n] = room[half : half + n]
    barge = BargeIns()
    _, path = run_path(echo, far, then=barge)
    assert barge.taken == []
    assert path.delay.delay_s == pytest.approx(0.04 + step_ms / 1000, abs=0.003)  # and it found where it went


@pytest.mark.parametrize("gain_db", [-6.0, 0.0])
def test_a_person_talking_over_the_robot_is_not_mistaken_for_its_echo(far, gain_db):
    near, _ = near_clip(1)
    echo = np.convolve(far, room_response(gain_db, 40, 0.25))[: len(far)]
    start = int(8.0 * RATE)
    mic = echo.copy()
    mic[start : start + len(near)] += near[: len(mic) - start]
    barge = BargeIns()
    run_path(mic, far, then=barge)
    first = start // BLOCK
    assert barge.taken and first <= barge.taken[0] <= first + 25  # within 750 ms of the onset
    assert not [b for b in barge.refused if b < first]


def test_the_rooms_hiss_after_the_robot_spoke_is_no_turn(far):
    """While the robot speaks the gate fills what it holds back with the room's own hiss: a room
    that went digitally silent for seconds made its hiss afterwards stand out as speech."""
    from companion.config import VadSettings
    from companion.messages import AudioChunk
    from companion.vad import TurnDetector

    rng = np.random.default_rng(5)
    quiet = int(3.0 * RATE)
    played = np.concatenate([np.zeros(quiet), far, np.zeros(2 * quiet)])
    hiss = 10 ** (-60 / 20) * rng.standard_normal(len(played))
    echo = np.convolve(played, room_response(-6.0, 40, 0.25))[: len(played)] + hiss
    held: list[np.ndarray] = []

    def keep_held(path: EchoPath, block: np.ndarray) -> None:
        if path.gated_blocks > len(held):
            held.append(block)

    out, path = run_path(echo, played, then=keep_held)
    assert path.gated_blocks > 100
    level = lambda x: 10 * np.log10(np.mean(np.asarray(x, dtype=float) ** 2) + 1e-9)  # noqa: E731
    assert abs(level(np.concatenate(held)) - level(out[:quiet])) < 1.5  # the hiss, not silence
    detector = TurnDetector(VadSettings())
    blocks = range(0, len(out) - BLOCK + 1, BLOCK)
    turns = [u for i in blocks for u in detector.feed(AudioChunk(out[i : i + BLOCK], RATE, i / RATE))]
    turns += detector.flush()
    assert [(round(u.start_s, 1), round(u.end_s, 1)) for u in turns if u.start_s > (quiet + len(far)) / RATE] == []


def test_a_room_that_changes_under_the_filter_is_not_taken_for_a_person(far):
    """Someone picks the robot up: the echo arrives as early as before but through another room,
    twice as loud. Until the filter has learnt the new room, what leaks past it still follows what
    the speaker played, and is no barge-in."""
    far = np.concatenate([far, far])
    half = len(far) // 2
    before = np.convolve(far, room_response(-6.0, 40, 0.25, seed=0))[: len(far)]
    after = np.convolve(far, room_response(0.0, 40, 0.3, seed=7))[: len(far)]
    echo = np.concatenate([before[:half], after[half:]])
    barge = BargeIns()
    run_path(echo, far, then=barge)
    assert barge.taken == []
    assert barge.refused  # it did leak, and was recognised


@pytest.mark.parametrize("clip", [0, 2, 6])
def test_a_voice_over_what_is_left_of_the_echo_is_no_leak(far, clip):
    """A trusted filter leaves some echo (18 dB down here, 10-12 dB live), and where the person's
    voice is weak it still wins the phase: what passed the gate matches what the speaker played
    with a sharp peak, as a leak does. But most of what the microphone hears is the person, so it
    is a barge-in (these three were taken for echo before the microphone's share was asked)."""
    near, _ = near_clip(clip)
    far = np.concatenate([far, far])
    echo = np.convolve(far, room_response(-6.0, 40, 0.25))[: len(far)]
    at = len(far) // 2 + RATE
    mic = echo.copy()
    mic[at : at + len(near)] += near[: len(mic) - at]
    barge = BargeIns()
    run_path(mic, far, then=barge)
    assert barge.taken and at // BLOCK <= barge.taken[0] <= at // BLOCK + 25
    assert not barge.refused


def test_after_its_echo_jumps_the_robot_can_be_interrupted_again_soon(far):
    """The filter stops removing the echo: where it went is looked up at once and the reference
    read from there, so the filter keeps what it learnt, and a person who talks 2.5 s after the
    jump is heard."""
    far = np.concatenate([far, far])
    half = len(far) // 2
    step, base = int(0.03 * RATE), int(0.04 * RATE)
    room = np.convolve(far, room_response(-6.0, 0, 0.25))[: len(far)]
    mic = np.zeros(len(far))
    mic[base:half] = room[: half - base]
    mic[half + base + step :] = room[half : len(far) - base - step]
    near, _ = near_clip(3)
    at = half + int(2.5 * RATE)
    mic[at : at + len(near)] += near
    barge = BargeIns()
    _, path = run_path(mic, far, then=barge)
    assert path.shift_s == pytest.approx(0.03, abs=0.0005)
    assert [b for b in barge.taken if at // BLOCK <= b <= at // BLOCK + 25]  # the person
    assert not [b for b in barge.taken if b < at // BLOCK]


def test_an_echo_that_keeps_stepping_is_followed_and_the_robot_can_still_be_interrupted(far):
    """Steps of a few ms every few seconds (a sound server trimming its buffers, as on the bench's
    PulseAudio path: 13.5 -> 12.8 -> 9.5 -> 6.2 -> 2.2 ms over 15 s): the filter follows or
    relearns each move, so it is trusted again and a person who talks after the last step is
    heard; the robot's own echo never interrupts it."""
    far = np.concatenate([far, far, far])
    room = np.convolve(far, room_response(-6.0, 0, 0.25))[: len(far)]
    base = int(0.04 * RATE)
    steps = [(int(t * RATE), int(ms / 1000 * RATE)) for t, ms in [(12, -1), (16, -3), (20, -3), (24, -4)]]
    mic = np.zeros(len(far))
    for i, (at, _) in enumerate([(0, 0), *steps]):
        moved = base + sum(s for _, s in steps[:i])
        end = min(steps[i][0] if i < len(steps) else len(far), len(far) - moved)
        mic[at + moved : end + moved] = room[at:end]
    near, _ = near_clip(3)
    at = int(31 * RATE)
    mic[at : at + len(near)] += near
    barge = BargeIns()
    run_path(mic, far, then=barge)
    assert [b for b in barge.taken if at // BLOCK <= b <= at // BLOCK + 25]  # the person
    assert not [b for b in barge.taken if b < at // BLOCK]


def test_a_filter_reading_the_reference_from_a_wrong_place_starts_again(far):
    """A follow that went wrong leaves the filter unable to remove anything (the echo comes before
    the reference it is read against), while the delay finder sees the echo where it always was:
    after ``stuck_blocks`` it learns the room anew, and a person is heard again."""
    far = np.concatenate([far, far, far])
    mic = np.convolve(far, room_response(-6.0, 40, 0.25))[: len(far)]
    near, _ = near_clip(3)
    at = int(30 * RATE)
    mic[at : at + len(near)] += near
    barge = BargeIns()
    wrong_at = int(12 * RATE) // BLOCK

    def misread(path: EchoPath, out: np.ndarray) -> None:
        if barge.block == wrong_at:
            assert path.trained
            path.shift_s += 0.15  # as a bad follow would
        barge(path, out)

    _, path = run_path(mic, far, then=misread)
    assert path.shift_s < 0.05
    assert [b for b in barge.taken if at // BLOCK <= b <= at // BLOCK + 25]  # the person
    assert not [b for b in barge.taken if b < at // BLOCK]


@pytest.mark.parametrize(("seed", "gain_db"), [(7, 0.0), (3, -6.0)])
def test_a_filter_that_stops_removing_the_echo_without_a_jump_soon_stops_passing_it(far, seed, gain_db):
    """The room changes under a trusted filter at the same delay: no jump to follow. What gets past
    is checked against what was played, and the filter is distrusted at once, so the echo does not
    reach the turn detector as speech for seconds (a leak heard as "Thanks." made a phantom turn)."""
    import webrtcvad

    far = np.concatenate([far, far])
    half = len(far) // 2
    before = np.convolve(far, room_response(-6.0, 40, 0.25, seed=0))[: len(far)]
    after = np.convolve(far, room_response(gain_db, 40, 0.3, seed=seed))[: len(far)]
    vad = webrtcvad.Vad(2)
    voiced: list[bool] = []
    run_path(
        np.concatenate([before[:half], after[half:]]),
        far,
        then=lambda _p, out: voiced.append(vad.is_speech(out.tobytes(), RATE)),
    )
    assert sum(voiced[half // BLOCK :]) <= 20  # of ~420 blocks (63-89 before the check)


def test_asking_before_a_pause_leaves_the_filter_as_it_is(far):
    """The pause at 120 ms of voice asks is_echo(act=False) on many blocks: the answer is the
    same leak check, but the filter is not distrusted (or realigned) for asking."""
    import webrtcvad

    far = np.concatenate([far, far])
    half = len(far) // 2
    before = np.convolve(far, room_response(-6.0, 40, 0.25, seed=0))[: len(far)]
    after = np.convolve(far, room_response(0.0, 40, 0.3, seed=7))[: len(far)]
    echo = np.concatenate([before[:half], after[half:]])
    vad = webrtcvad.Vad(2)
    asked: list[tuple[bool, bool, bool, float]] = []  # (trained before, answer, trained after, aligned moved)
    run = 0

    def ask(path: EchoPath, out: np.ndarray) -> None:
        nonlocal run
        run = run + 1 if vad.is_speech(out.tobytes(), RATE) else 0
        if run >= 4:
            trained, aligned = path.trained, path.aligned_for
            answer = path.is_echo(act=False)
            asked.append((trained, answer, path.trained, path.aligned_for - aligned))
            run = 0

    run_path(echo, far, then=ask)
    assert any(answer for _, answer, _, _ in asked)  # it leaked, and was recognised
    assert all(t0 == t1 and moved == 0.0 for t0, _, t1, moved in asked)


def test_the_path_says_which_blocks_may_hold_the_robots_sound(far):
    """While the robot speaks, and for the echo tail after: yes; in the quiet after: no (a voice
    that began there came before the robot's next reply, whatever the filter says then)."""
    played = np.concatenate([far, np.zeros(3 * RATE)])
    echo = np.convolve(played, room_response(-6.0, 40, 0.25))[: len(played)]
    flags: list[bool] = []
    _, path = run_path(echo, played, then=lambda p, _out: flags.append(p.echo_possible))
    assert path.trained
    end = len(far) // BLOCK
    assert all(flags[end - 40 : end])
    assert not any(flags[end + int(0.5 * RATE) // BLOCK :])


def test_after_a_leak_the_robot_is_still_heard_only_where_its_echo_was_measured(far):
    """A leak check that finds echo at the measured delay distrusts the filter, and the gate
    then takes anything played within 2 s for possible echo; but the delay still holds, so the
    robot's sound (and tail) is known to be gone from the microphone soon after it stops."""
    played = np.concatenate([far, np.zeros(3 * RATE)])
    echo = np.convolve(played, room_response(-6.0, 40, 0.25))[: len(played)]
    end = len(far) // BLOCK
    flags: list[tuple[bool, bool, bool]] = []

    def then(p, _out):
        if len(flags) == end - 10:
            p._distrust("the test says so")
        flags.append((p.trained, p.echo_possible, p.robot_audible))

    _, path = run_path(echo, played, then=then)
    assert path.delay_known
    assert all(audible for _, _, audible in flags[end - 40 : end])
    quiet = [f for f in flags[end + int(0.5 * RATE) // BLOCK :] if not f[0]]  # untrusted, in the quiet
    assert len(quiet) > 10
    assert all(possible for _, possible, _ in quiet)  # the untrusted gate's 2 s
    assert not any(audible for _, _, audible in quiet)
