"""The conversation log: a JSON line per turn, on disk at once, rotated by size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from companion.convlog import ConversationLog
from companion.messages import State, StateChange, TurnFinished, TurnRecord
from companion.stages import EventBus

FIXED = datetime(2025, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)


def record(turn: int, heard: str = "what is a rock", **kw: object) -> TurnRecord:
    return TurnRecord(
        turn=turn,
        heard=heard,
        reply="Rocks are old.",
        spoken="Rock old, question?",
        persona="rocky",
        timings_ms={"stt": 270.04, "first_audio": 812.36},
        **kw,  # type: ignore[arg-type]
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_finished_turn_is_one_json_line(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "companion.log", now=lambda: FIXED)
    bus = EventBus()
    bus.subscribe(log)
    bus.publish(StateChange(State.THINKING, State.LISTENING, "rocky"))  # not a turn: ignored
    bus.publish(TurnFinished(record(1)))
    bus.publish(TurnFinished(record(2, heard="are you sad", error="tts failed")))
    log.close()
    first, second = lines(tmp_path / "companion.log")
    assert first == {
        "time": "2025-03-01T12:30:00.250+00:00",
        "turn": 1,
        "persona": "rocky",
        "heard": "what is a rock",
        "reply": "Rocks are old.",
        "spoken": "Rock old, question?",
        "timings_ms": {"stt": 270.0, "first_audio": 812.4},
    }
    assert second["heard"] == "are you sad" and second["error"] == "tts failed"


def test_non_ascii_text_is_kept_readable(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "c.log")
    log.write(record(1, heard="café — naïve"))
    log.close()
    assert "café — naïve" in (tmp_path / "c.log").read_text(encoding="utf-8")


def test_a_killed_process_keeps_every_finished_turn(tmp_path: Path) -> None:
    path = tmp_path / "companion.log"
    script = f"""
import os, signal
from companion.convlog import ConversationLog
from companion.messages import TurnRecord
log = ConversationLog({str(path)!r})
for turn in (1, 2, 3):
    log.write(TurnRecord(turn=turn, heard="hello", spoken="hi"))
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert [line["turn"] for line in lines(path)] == [1, 2, 3]


def test_rotates_by_size_keeping_the_newest_turns(tmp_path: Path) -> None:
    path = tmp_path / "companion.log"
    line_bytes = one_line_bytes(tmp_path)
    log = ConversationLog(path, max_bytes=3 * line_bytes + 3, backups=2, now=lambda: FIXED)
    for turn in range(1, 11):
        assert log.write(record(turn))
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("companion")) == [
        "companion.log",
        "companion.log.1",
        "companion.log.2",
    ]
    newest, older, oldest = (lines(path), lines(log.backup_path(1)), lines(log.backup_path(2)))
    # three turns per file: [1 2 3] dropped, [4 5 6] [7 8 9] kept as backups, [10] current
    assert [[r["turn"] for r in f] for f in (oldest, older, newest)] == [[4, 5, 6], [7, 8, 9], [10]]
    for p in (path, log.backup_path(1), log.backup_path(2)):
        assert p.stat().st_size <= 3 * line_bytes + 3


def one_line_bytes(tmp_path: Path) -> int:
    probe = tmp_path / "probe" / "one.log"
    log = ConversationLog(probe, now=lambda: FIXED)
    log.write(record(1))
    log.close()
    return probe.stat().st_size


def test_no_backups_means_start_over(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    log = ConversationLog(path, max_bytes=10, backups=0)
    log.write(record(1))
    log.write(record(2))
    log.close()
    assert [r["turn"] for r in lines(path)] == [2]
    assert not (tmp_path / "c.log.1").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_log_is_reported_once_and_never_raises(tmp_path: Path, caplog) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    log = ConversationLog(locked / "c.log")
    assert not log.write(record(1))
    assert not log.write(record(2))
    assert caplog.text.count("cannot write the conversation log") == 1


def test_a_log_path_that_is_a_directory_is_reported_once_and_never_raises(tmp_path: Path, caplog) -> None:
    (tmp_path / "c.log").mkdir()
    log = ConversationLog(tmp_path / "c.log")
    assert not log.write(record(1))
    assert not log.write(record(2))
    assert caplog.text.count("cannot write the conversation log") == 1
