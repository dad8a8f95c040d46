"""Turn detection with the real webrtcvad on the recorded fixtures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fixtures.fixtures import fixture_path, load_manifest

from companion.audio.io import load_for_stt
from companion.audio.sources import FileSource
from companion.config import VadSettings
from companion.messages import AudioChunk, Utterance
from companion.vad import TurnDetector


def detect(name: str, settings: VadSettings | None = None) -> list[Utterance]:
    detector = TurnDetector(settings or VadSettings(), clock=lambda: 0.0)
    source = FileSource(load_for_stt(fixture_path(name)), realtime=False)
    turns: list[Utterance] = []
    for chunk in source.chunks():
        turns += detector.feed(chunk)
    return turns + detector.flush()


SESSIONS = [n for n, f in load_manifest()["files"].items() if f["kind"] == "session"]


@pytest.mark.parametrize("name", SESSIONS)
def test_sessions_give_one_turn_per_spoken_turn(name):
    expected = load_manifest()["files"][name]["turns"]
    turns = detect(name)
    assert len(turns) == len(expected)
    for got, want in zip(turns, expected, strict=True):
        # onset kept (pre-roll covers the start) and the end found within a frame or two
        assert got.start_s <= want["start_s"], "speech onset clipped"
        assert abs(got.end_s - want["end_s"]) < 0.25
        # the decision comes after the configured silence, not before
        assert got.detected_s - got.end_s >= VadSettings().end_silence_ms / 1000 - 0.031


@pytest.mark.parametrize("name", [f"utt_{i:02d}.wav" for i in range(1, 13)])
def test_each_utterance_is_one_turn_with_its_onset(name):
    want = load_manifest()["files"][name]["turns"][0]
    turns = detect(name)
    assert len(turns) == 1
    assert turns[0].start_s <= want["start_s"] - 0.1, "less than 100 ms of pre-roll before the onset"


def test_a_cough_is_not_a_turn():
    assert detect("cough.wav") == []


def test_background_noise_alone_is_not_a_turn():
    assert detect("noise_only.wav") == []


def test_a_turn_longer_than_the_maximum_is_cut_not_lost():
    settings = VadSettings(max_utterance_s=8.0)
    want = load_manifest()["files"]["long_utterance.wav"]["turns"][0]
    turns = detect("long_utterance.wav", settings)
    assert len(turns) >= 3
    assert all(t.seconds <= 8.0 + 0.05 for t in turns)
    assert [t.cut for t in turns[:-1]] == [True] * (len(turns) - 1)
    # contiguous: each piece starts where the previous one stopped
    for a, b in itertools.pairwise(turns):
        assert abs(b.start_s - (a.start_s + a.seconds)) < 0.031
    assert turns[0].start_s <= want["start_s"]
    assert turns[-1].end_s >= want["end_s"] - 0.25


class Scripted:
    """A frame classifier that says what a script says (for the detector's own logic)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = iter(pattern)

    def is_speech(self, frame: bytes, rate: int) -> bool:
        return next(self.pattern, "_") == "#"


def run_pattern(pattern: str, **kw) -> list[Utterance]:
    settings = VadSettings(frame_ms=30, **kw)
    det = TurnDetector(settings, classifier=Scripted(pattern), clock=lambda: 0.0)
    samples = np.zeros(480 * len(pattern), dtype=np.int16)
    out = []
    for i in range(0, len(samples), 480 * 3):
        out += det.feed(AudioChunk(samples[i : i + 480 * 3], 16000, i / 16000))
    return out + det.flush()


def test_short_gaps_inside_speech_do_not_end_the_turn():
    pattern = "_" * 20 + "#" * 20 + "_" * 10 + "#" * 20 + "_" * 30
    assert len(run_pattern(pattern, end_silence_ms=500)) == 1


def test_a_long_enough_gap_splits_two_turns():
    pattern = "_" * 20 + "#" * 20 + "_" * 20 + "#" * 20 + "_" * 30
    turns = run_pattern(pattern, end_silence_ms=450)
    assert len(turns) == 2
    assert turns[0].end_s == pytest.approx(40 * 0.03)


def test_pre_roll_is_kept_before_the_onset():
    turns = run_pattern("_" * 30 + "#" * 20 + "_" * 30, pre_roll_ms=300)
    assert turns[0].start_s == pytest.approx(30 * 0.03 - 0.3)


def test_reset_forgets_a_partial_turn():
    det = TurnDetector(VadSettings(), classifier=Scripted("#" * 40 + "_" * 40), clock=lambda: 0.0)
    z = np.zeros(480 * 20, dtype=np.int16)
    det.feed(AudioChunk(z, 16000, 0.0))
    assert det.in_speech
    det.reset()
    assert not det.in_speech
    assert det.flush() == []
