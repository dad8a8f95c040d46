"""Talking over the robot on real sound devices, with its own voice in its microphone.

The session of ``companion bench --barge-in``: ``companion run`` on a private PulseAudio
server, with a room that carries the speaker into the microphone (about 40 ms, -6 dB,
reverberation RT60 0.25 s), and people who interrupt it, recorded in festival voices the
rest of the suite does not use (tests/fixtures/bargein). Reaction times, ERLE and CPU are
printed; the targets (no false barge-in at all, WER <= 0.2 on average, reaction) live in
``companion bench --barge-in``, which runs longer sessions at -6 and 0 dB and which this
loop does not meet yet (1-2 false barge-ins in some 20-reply sessions on a loaded machine).
This test holds the loop to what it has shown in every session so far, so that a change that
breaks it (a robot that keeps interrupting itself, or never stops for a person) fails here.
"""

from __future__ import annotations

import pytest

from companion.bench.bargein import report, run_barge_in
from companion.bench.pulse import PulseUnavailable

pytestmark = [pytest.mark.audio, pytest.mark.slow]


def test_a_person_talking_over_the_robot_stops_it_and_its_own_echo_does_not(tmp_path):
    try:
        run = run_barge_in(tmp_path, gain_db=-6.0, replies=20, interruptions=4, log=print)
    except PulseUnavailable as exc:
        pytest.skip(f"no PulseAudio here: {exc}")
    print("\n".join(report([run])))
    log = (tmp_path / "daemon.log").read_text(encoding="utf-8")[-3000:]
    assert run.replies >= 20
    assert run.false_barge_ins <= 2, f"the robot interrupted itself {run.false_barge_ins} times:\n{log}"
    assert run.reactions_ms, f"none of 4 interruptions stopped the robot; heard {run.heard}\n{log}"
    assert run.wers and min(run.wers) <= 0.2, f"no interruption was understood: {run.heard}"
