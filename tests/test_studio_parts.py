"""Small parts of the voice studio, without models: ranges, progress, packing, workspace files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from companion.errors import UserError
from companion.studio.progress import Progress, parse_range
from companion.studio.speakers import agglomerate
from companion.studio.transcribe import GAP_S, RATE, WINDOW_S, pack
from companion.studio.workspace import Segment, Workspace


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("00:12:00-00:19:30", (720.0, 1170.0)),
        ("1:02:03.5-1:02:10", (3723.5, 3730.0)),
        ("5-12.5", (5.0, 12.5)),
        ("02:00-03:00", (120.0, 180.0)),
    ],
)
def test_ranges_accept_clock_times_and_seconds(text: str, span: tuple[float, float]):
    assert parse_range(text) == span


@pytest.mark.parametrize("text", ["12", "a-b", "1:2:3:4-5", "00:10-00:05"])
def test_bad_ranges_are_user_errors(text: str):
    with pytest.raises(UserError, match="--range"):
        parse_range(text)


def test_progress_prints_at_most_every_interval_and_always_the_end():
    now = [0.0]
    out = io.StringIO()
    progress = Progress("decoding film.mkv", 100.0, stream=out, every_s=5.0, clock=lambda: now[0])
    for done in range(0, 101, 10):
        now[0] += 2.0
        progress.update(done, f"{done} s")
    lines = out.getvalue().splitlines()
    assert lines[-1] == "decoding film.mkv: 100% (100 s)"
    assert len(lines) == 4  # at 6, 12 and 18 s of clock, then the end


def test_packing_lays_clips_into_windows_with_gaps():
    clips = [np.ones(int(s * RATE), np.float32) for s in (10.0, 10.0, 10.0, 3.0, 40.0)]
    windows = pack(clips)
    assert [[i for i, _, _ in spans] for _, spans in windows] == [[0, 1], [2, 3], [4]]
    audio, spans = windows[0]
    assert spans[1][1] == pytest.approx(10.0 + GAP_S)
    assert audio.size == int((20.0 + GAP_S) * RATE)
    assert windows[2][0].size == int(WINDOW_S * RATE)  # an over-long clip is cut to one window


def test_agglomerative_clustering_separates_two_speakers():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    vectors = np.stack([v + 0.1 * rng.standard_normal(16) for v in [a] * 5 + [b] * 4]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = agglomerate(vectors, 0.8)
    assert len(set(labels[:5])) == 1 and len(set(labels[5:])) == 1 and labels[0] != labels[5]


def test_workspace_round_trips_and_saves_each_update_atomically(tmp_path: Path):
    ws = Workspace(tmp_path, [{"path": "film.mkv"}], segments=[Segment("s1-00001", "film.mkv", 1.0, 3.5)])
    ws.save()
    ws.update("s1-00001", decision="target", trim_end_s=0.5)
    again = Workspace.open(tmp_path)
    assert again.segments[0].decision == "target" and again.segments[0].kept_s == pytest.approx(2.0)
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decision": "maybe"}, "decision 'maybe' is not one of"),
        ({"colour": "red"}, "unknown segment field 'colour'"),
    ],
)
def test_damaged_workspace_is_a_one_line_error(tmp_path: Path, change: dict, message: str):
    seg = {"id": "s1-00001", "source": "f.mkv", "start_s": 0.0, "end_s": 1.0, **change}
    (tmp_path / "segments.json").write_text(json.dumps({"version": 1, "segments": [seg]}))
    with pytest.raises(UserError, match=message):
        Workspace.open(tmp_path)


def test_missing_workspace_says_what_to_run(tmp_path: Path):
    with pytest.raises(UserError, match="run companion voice studio first"):
        Workspace.open(tmp_path)
