"""`companion bench`: its statistics, report, JSON and plot on known numbers, and one real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from fixtures.fixtures import FIXTURES_DIR, load_manifest

from companion.audio.io import load_for_stt
from companion.bench.machine import LoadMeter, cpu_model, ram_gb
from companion.bench.report import SCHEMA, format_report, percentile, stats, summarise, to_json
from companion.bench.results import STAGES, BenchResult, ColdStart, TurnResult
from companion.bench.runner import TimingSink, match_turns, turn_result
from companion.bench.session import (
    PacedSession,
    PlayedTurn,
    Segment,
    background_rms,
    load_room,
    load_segments,
    read_manifest,
)
from companion.config import VadSettings
from companion.errors import UserError
from companion.messages import SpokenAudio, TurnRecord, Utterance
from companion.vad import TurnDetector

# ---- statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # order does not matter
        ([1.0, 2.0, 3.0], 50, 2.0),
        ([0.0, 10.0], 95, 9.5),
        ([float(i) for i in range(1, 21)], 95, 19.05),
        ([float(i) for i in range(1, 101)], 95, 95.05),
        ([1.0, 2.0, 3.0], 0, 1.0),
        ([1.0, 2.0, 3.0], 100, 3.0),
    ],
)
def test_percentiles_interpolate_between_closest_ranks(values, q, expected):
    assert percentile(values, q) == pytest.approx(expected, abs=1e-9)
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_stats_state_n_median_and_p95():
    assert stats([100.0, 300.0, 200.0, 400.0]) == {
        "n": 4,
        "median": 250.0,
        "p95": 385.0,
        "mean": 250.0,
        "min": 100.0,
        "max": 400.0,
    }
    assert stats([])["n"] == 0 and stats([])["median"] is None


# ---- one turn's numbers -------------------------------------------------------------------


class _Session:
    """Stands in for PacedSession's clock mapping: audio time 0 was at wall time 100."""

    def wall_time(self, source_s: float) -> float:
        return 100.0 + source_s


def _played(true_end_s: float, start_s: float = 0.0, name: str = "utt_01.wav") -> PlayedTurn:
    seg = Segment(name, 0, "Hello robot", np.zeros(16000, dtype=np.int16), 1.0)
    return PlayedTurn(seg, start_s, true_end_s)


def test_response_is_measured_from_the_true_end_of_speech_and_its_stages_add_up():
    played = _played(true_end_s=2.0)  # spoken at wall time 102.0
    record = TurnRecord(turn=1, heard="hello robot", spoken="Hi!", speech_end_s=2.3)
    record.timings_ms.update(
        {"vad": 500.0, "stt": 120.0, "llm_first_token": 30.0, "first_sentence": 150.0, "tts_first_audio": 60.0}
    )
    # the detector thought speech ended at 2.3 s and decided at wall time 102.8
    utt = Utterance(np.zeros(10, dtype=np.int16), 16000, 0.5, 2.3, 2.8, detected_at=102.8)
    sink = TimingSink(_NullSink(delay=0.05), clock=lambda: 103.2)
    sink.write(SpokenAudio(np.zeros(10, dtype=np.float32), 22050, 1, 0))
    result = turn_result(played, record, utt, _Session(), sink)  # type: ignore[arg-type]
    assert result.response_ms == pytest.approx(1250.0)  # 103.2 + 0.05 - 102.0
    assert result.stages_ms["vad_wait"] == pytest.approx(800.0)  # not the detector's own 500 ms
    # ...of which: the detector put the end 0.3 s late, waited 0.5 s of silence, and decided on time
    assert result.stages_ms["vad_end_error"] == pytest.approx(300.0)
    assert result.stages_ms["vad_silence"] == pytest.approx(500.0)
    assert result.stages_ms["listen_lag"] == pytest.approx(0.0)
    assert result.stages_ms["stt"] == 120.0
    assert result.stages_ms["llm_first_sentence"] == 150.0
    assert result.stages_ms["tts_first_audio"] == 60.0
    assert result.stages_ms["playback_start"] == pytest.approx(120.0)
    assert sum(result.stages_ms[s] for s in STAGES) == pytest.approx(result.response_ms)
    assert result.stages_ms["device_delay"] == pytest.approx(50.0)
    assert result.stages_ms["llm_first_token"] == 30.0


def test_a_turn_without_a_reply_has_no_response_time():
    result = turn_result(_played(2.0), None, None, _Session(), TimingSink(_NullSink()))  # type: ignore[arg-type]
    assert not result.answered and result.error == "no reply"


def test_the_sink_notes_only_the_first_sample_of_each_reply():
    times = iter([10.0, 11.0, 20.0])
    sink = TimingSink(_NullSink(delay=0.5), clock=lambda: next(times))
    block = np.zeros(10, dtype=np.float32)
    assert sink.write(SpokenAudio(block, 22050, 1, 0)) == 0.5
    sink.write(SpokenAudio(block, 22050, 1, 1))
    sink.write(SpokenAudio(block, 22050, 2, 0))
    assert sink.first_heard == {1: 10.5, 2: 20.5}


def test_each_played_turn_gets_the_reply_to_its_own_speech():
    played = [_played(1.9, 0.0, "a.wav"), _played(9.0, 5.0, "b.wav"), _played(15.0, 12.0, "c.wav")]
    first = TurnRecord(turn=1, heard="one", speech_end_s=2.0)
    split_a = TurnRecord(turn=2, heard="two", speech_end_s=7.0)  # the detector split turn b in two
    split_b = TurnRecord(turn=3, heard="two more", speech_end_s=9.1)
    matched = match_turns(played, [first, split_a, split_b], session_end_s=20.0)
    assert [(m[1], m[2]) for m in matched] == [(first, 1), (split_b, 2), (None, 0)]
    dropped = TurnRecord(turn=2, heard="two", speech_end_s=7.0, interrupted=True)  # the user went on: unheard
    matched = match_turns(played, [first, dropped, split_b], session_end_s=20.0)
    assert [(m[1], m[2]) for m in matched] == [(first, 1), (split_b, 1), (None, 0)]


class _NullSink:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def begin(self, turn: int) -> None:
        pass

    def write(self, audio: SpokenAudio) -> float:
        return self.delay

    def end(self, turn: int) -> str:
        return ""

    def close(self) -> None:
        pass


# ---- the paced session ----------------------------------------------------------------------


class _FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_the_session_speaks_in_real_time_and_waits_for_the_reply():
    t = _FakeTime()
    segs = [Segment(f"s{i}.wav", 0, "hi", np.full(4800, 1000, dtype=np.int16), 0.25) for i in range(2)]
    idle_answers = iter([False] * 10 + [True] * 1000)  # the robot answers for 10 blocks after the first turn
    session = PacedSession(
        segs,
        block_ms=30,
        lead_s=0.3,
        settle_s=0.6,
        gap_s=0.3,
        idle=lambda: next(idle_answers),
        clock=t.clock,
        sleep=t.sleep,
    )
    chunks = list(session.chunks())
    starts = [c.start_s for c in chunks]
    assert starts == pytest.approx([i * 0.03 for i in range(len(chunks))])  # one continuous audio clock
    assert all(len(c.samples) == 480 for c in chunks)
    assert t.now == pytest.approx(50.0 + chunks[-1].end_s)  # delivered no faster than real time
    first, second = session.played
    assert first.start_s == pytest.approx(0.3) and first.true_end_s == pytest.approx(0.55)
    # turn 2 waits: 0.3 s of turn 1 + 0.6 settle + 10 blocks while answering + 0.3 gap
    assert second.start_s == pytest.approx(0.3 + 0.3 + 0.6 + 10 * 0.03 + 0.3)
    assert session.wall_time(second.true_end_s) == pytest.approx(50.0 + second.start_s + 0.25)
    loud = [c.start_s for c in chunks if np.abs(c.samples).max() > 500]
    assert loud[0] == pytest.approx(first.start_s) and loud[-1] == pytest.approx(second.start_s + 0.27)


def test_the_pauses_sound_like_the_recordings_room_so_the_detector_finds_the_true_end():
    """A quieter 'room' between turns made the detector take the recordings' background for
    speech (0.4 s too late on every turn); the room tone must be the recordings' own."""
    t = _FakeTime()
    room = load_room(FIXTURES_DIR)
    assert room is not None and len(room) == 3 * 16000  # noise_only.wav
    session = PacedSession(load_segments(FIXTURES_DIR), room=room, idle=lambda: True, clock=t.clock, sleep=t.sleep)
    detector = TurnDetector(VadSettings(), clock=t.clock)
    ends = [u.end_s for chunk in session.chunks() for u in detector.feed(chunk)]
    assert len(ends) == len(session.played)
    errors = [end - played.true_end_s for end, played in zip(ends, session.played, strict=True)]
    assert max(abs(e) for e in errors) < 0.2, errors


def test_a_room_tone_louder_than_the_recordings_background_is_brought_to_its_level():
    """The pause fixtures' room tone is 12 dB above their sessions' own background: played as
    is between turns, the background rose after every turn and the detector took it for speech."""
    pauses = FIXTURES_DIR / "pauses"
    stored = load_for_stt(pauses / "room_tone.flac")
    room = load_room(pauses)
    assert room is not None and len(room) == len(stored)

    def db(x):
        return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))

    background = background_rms(pauses, read_manifest(pauses))
    assert background is not None
    assert db(stored) - 20 * np.log10(background) > 6  # the file itself is louder
    assert abs(db(room) - 20 * np.log10(background)) < 0.5


def test_segments_come_from_the_manifest_with_their_true_end_of_speech():
    segs = load_segments(FIXTURES_DIR, ["utt_01.wav", "session_1.wav"])
    turns = load_manifest()["files"]["session_1.wav"]["turns"]
    assert [(s.fixture, s.index) for s in segs] == [("utt_01.wav", 0)] + [("session_1.wav", i) for i in range(3)]
    assert segs[0].text == "Hello robot, how are you today?"
    assert segs[0].speech_end_s == pytest.approx(1.98 - 0.1)  # cut 0.3 s before the speech at 0.4 s
    for seg, turn in zip(segs[1:], turns, strict=True):
        assert seg.speech_end_s == pytest.approx(turn["end_s"] - (turn["start_s"] - 0.3), abs=1e-3)
        assert seg.seconds == pytest.approx(turn["end_s"] - turn["start_s"] + 0.6, abs=1e-3)


def test_the_default_fixture_set_is_the_spoken_utterances_and_sessions():
    names = {s.fixture for s in load_segments(FIXTURES_DIR)}
    files = load_manifest()["files"]
    want = {n for n, f in files.items() if f.get("kind") in ("utterance", "session") and "source" not in f}
    assert names == want
    assert "noise_only.wav" not in names and "stereo_44k.wav" not in names


def test_unknown_fixtures_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=r"no fixture nope\.wav"):
        load_segments(FIXTURES_DIR, ["nope.wav"])
    with pytest.raises(UserError, match=r"fixtures\.json: no such file"):
        load_segments(tmp_path)


# ---- report, JSON, plot -----------------------------------------------------------------------


def _known_result() -> BenchResult:
    result = BenchResult(
        machine={"cores": 2, "description": "2 cores (Test CPU)"},
        models={"stt": "tiny.en"},
        setup={"sink": "files"},
        load={"load_1min": 1.5, "machine_busy_pct": 80.0, "others_busy_pct": 30.0},
        cold_start=ColdStart(ready_s=2.5, ready_from="READY=1", peak_rss_mb=700.0, models_ms={"stt": 900.0}),
    )
    for i, response in enumerate([600.0, 700.0, 800.0, 1000.0]):
        stages = {"vad_wait": 500.0, "stt": 50.0, "llm_first_sentence": 30.0, "tts_first_audio": 10.0}
        stages["playback_start"] = response - sum(stages.values())
        result.turns.append(TurnResult(f"utt_0{i}.wav", 0, "hi", 1.0, "hi", "hello", response, stages))
    result.turns.append(TurnResult("utt_09.wav", 0, "hi", 1.0, error="no reply"))
    return result


def test_the_summary_states_n_median_p95_and_where_the_time_goes():
    summary = summarise(_known_result())
    assert summary["turns"] == 5 and summary["answered"] == 4
    assert summary["response_ms"]["n"] == 4
    assert summary["response_ms"]["median"] == 750.0
    assert summary["response_ms"]["p95"] == 970.0
    assert summary["stages_ms"]["vad_wait"]["median"] == 500.0
    assert summary["stage_share_pct"]["vad_wait"] == pytest.approx(100 * 500 / 775, abs=0.1)


def test_the_json_has_a_stable_schema():
    data = json.loads(json.dumps(to_json(_known_result())))
    assert data["schema"] == SCHEMA
    assert set(data) == {"schema", "machine", "load", "models", "setup", "duration_s", "summary", "targets",
                         "cold_start", "turns"}  # fmt: skip
    assert set(data["targets"]) == {"response_median_ms", "response_p95_ms", "cold_start_s", "peak_rss_mb"}
    assert data["targets"]["response_median_ms"] == {"value": 750.0, "target": 600.0, "met": False}
    assert data["targets"]["response_p95_ms"]["met"] is False  # 970 ms against 900
    assert data["targets"]["peak_rss_mb"] == {"value": 700.0, "target": 500.0, "met": False}
    turn = data["turns"][0]
    assert set(turn) >= {"fixture", "index", "text", "true_end_s", "heard", "reply", "answered", "response_ms",
                         "stages_ms", "loop_timings_ms"}  # fmt: skip
    assert data["turns"][-1]["answered"] is False and data["turns"][-1]["response_ms"] is None
    assert data["cold_start"]["ready_from"] == "READY=1"


def test_the_report_says_n_the_load_and_which_targets_were_missed():
    text = format_report(_known_result())
    assert "n=4 of 5 turns" in text
    assert "median 750 ms, p95 970 ms" in text
    assert "30% by other processes" in text
    assert "2 cores (Test CPU)" in text
    assert "peak_rss_mb" in text and "MISSED" in text
    assert "not answered: no reply" in text


def test_the_plot_is_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from companion.bench.plot import plot_turns

    path = plot_turns(_known_result(), tmp_path / "plots" / "bench.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_machine_facts_are_read_from_proc():
    assert cpu_model("processor\t: 0\nmodel name\t: Test CPU @ 2GHz\n") == "Test CPU @ 2GHz"
    assert ram_gb("MemTotal:       24576000 kB\n") == pytest.approx(23.4375)
    load = LoadMeter().stop()
    assert set(load) <= {"load_1min", "machine_busy_pct", "others_busy_pct"}


# ---- a real run ---------------------------------------------------------------------------------

PERSONA = "name: Robot\nsystem_prompt: You are Robot, a friendly little robot. Answer in one short sentence.\n"


@pytest.mark.slow
def test_a_real_bench_run_on_two_fixtures(tmp_path):
    (tmp_path / "personas").mkdir()
    (tmp_path / "personas" / "tester.yaml").write_text(PERSONA, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(f"persona: tester\npersonas_dir: {tmp_path / 'personas'}\nstate_dir: {tmp_path / 'state'}\n")
    out = tmp_path / "out"
    args = ["--config", str(config), "--only", "utt_01.wav,utt_02.wav", "--device", "none"]
    args += ["--output-dir", str(out), "--json", str(tmp_path / "bench.json")]
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert [(t["fixture"], t["answered"]) for t in data["turns"]] == [("utt_01.wav", True), ("utt_02.wav", True)]
    for t in data["turns"]:
        assert t["heard"] and t["reply"]
        assert t["response_ms"] > t["stages_ms"]["vad_wait"] > 0
        assert sum(t["stages_ms"][s] for s in STAGES) == pytest.approx(t["response_ms"], abs=1.0)
    assert data["summary"]["response_ms"]["n"] == 2
    cold = data["cold_start"]
    assert cold["ready_from"] == "READY=1", cold
    assert 0 < cold["ready_s"] < 120 and cold["peak_rss_mb"] > 100
    assert sorted(p.name for p in out.glob("turn-*.wav")) == ["turn-001.wav", "turn-002.wav"]
    assert "response latency" in proc.stdout and "n=2 of 2 turns" in proc.stdout
    assert "load average at start" in proc.stdout
