"""Talking over the robot on real sound devices, with its own voice in its microphone.

The session of ``companion bench --barge-in``: ``companion run`` on a private PulseAudio
server, with a room that carries the speaker into the microphone (about 40 ms,
reverberation RT60 0.25 s) at -6 and 0 dB, and people who interrupt it, recorded in
festival voices the rest of the suite does not use (tests/fixtures/bargein). Checked:
the robot never takes its own echo for a person over 20 replies at 0 dB, and it stops
for a person and hears what they said. Reaction times and ERLE are printed (targets
live in the bench, not in timing asserts).
"""

from __future__ import annotations

import statistics

import pytest

from companion.bench.bargein import report, run_barge_in
from companion.bench.pulse import PulseUnavailable

pytestmark = [pytest.mark.audio, pytest.mark.slow]


@pytest.mark.parametrize(("gain_db", "replies"), [(-6.0, 10), (0.0, 20)])
def test_the_robot_stops_for_a_person_and_never_for_its_own_echo(tmp_path, gain_db, replies):
    try:
        run = run_barge_in(tmp_path, gain_db=gain_db, replies=replies, interruptions=4, log=print)
    except PulseUnavailable as exc:
        pytest.skip(f"no PulseAudio here: {exc}")
    print("\n".join(report([run])))
    log = (tmp_path / "daemon.log").read_text(encoding="utf-8")
    assert run.false_barge_ins == 0, f"the robot interrupted itself {run.false_barge_ins} times:\n{log[-3000:]}"
    assert run.reactions_ms, f"no interruption was noticed:\n{log[-3000:]}"
    assert len(run.reactions_ms) >= 3, f"{run.missed} of 4 interruptions not noticed; heard {run.heard}"
    assert statistics.fmean(run.wers) <= 0.2, f"interruptions heard as {run.heard}"
