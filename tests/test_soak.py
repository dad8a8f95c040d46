"""``companion bench --soak N``: RSS per turn, its slope after warm-up, failed turns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from companion.bench.session import load_segments
from companion.bench.soak import SoakOptions, SoakResult, format_soak, soak_audio

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_the_slope_leaves_out_the_warm_up_and_is_per_100_turns():
    flat = SoakResult(turns=60, warmup=10, fast=True, rss_mb=[500.0 + 5 * min(i, 10) for i in range(60)])
    assert flat.slope_mb_per_100 == pytest.approx(0.0, abs=1e-9)
    leak = SoakResult(turns=60, warmup=10, fast=True, rss_mb=[500.0 + 0.5 * i for i in range(60)])
    assert leak.slope_mb_per_100 == pytest.approx(50.0)
    assert SoakResult(turns=3, warmup=2, fast=True, rss_mb=[1.0, 2.0, 3.0]).slope_mb_per_100 is None


def test_the_report_says_flat_or_growing_and_lists_failures():
    flat = SoakResult(turns=30, warmup=10, fast=True, rss_mb=[600.0] * 30, failed=[(7, "llm: timeout")])
    text = format_soak(flat)
    assert "slope after warm-up: +0.00 MB per 100 turns (flat; target < 1)" in text
    assert "failed turns: 1" in text and "turn 7: llm: timeout" in text
    growing = SoakResult(turns=30, warmup=10, fast=True, rss_mb=[600.0 + i for i in range(30)])
    assert "GROWING" in format_soak(growing)
    assert json.loads(json.dumps(growing.as_json()))["slope_mb_per_100_turns"] == 100.0


def test_warm_up_defaults_to_a_fifth_and_at_least_ten():
    assert SoakOptions(FIXTURES, turns=200).warmup_turns == 40
    assert SoakOptions(FIXTURES, turns=30).warmup_turns == 10
    assert SoakOptions(FIXTURES, turns=5).warmup_turns == 3
    assert SoakOptions(FIXTURES, turns=200, warmup=60).warmup_turns == 60


def test_the_soak_recording_cycles_the_turns_with_room_tone_between():
    segments = load_segments(FIXTURES, ("utt_01.wav", "utt_02.wav"))
    audio = soak_audio(segments, 5, None)
    expected = 16000 + sum(len(segments[i % 2].samples) for i in range(5)) + 5 * 24000
    assert audio.dtype == np.int16 and len(audio) == expected


@pytest.mark.slow
def test_a_short_soak_through_the_real_daemon(tmp_path: Path):
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "bench", "--soak", "3", "--fast", "--warmup", "1",
         "--only", "utt_01.wav,utt_08.wav", "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "soak: " in proc.stdout and "slope after warm-up:" in proc.stdout
    data = json.loads(out.read_text())
    assert data["turns"] == 3 and data["answered"] >= 2 and len(data["rss_mb"]) == data["answered"]
    assert all(200 < v < 4000 for v in data["rss_mb"])
