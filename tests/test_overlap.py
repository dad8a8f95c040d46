"""RobotVoice: did a voice begin while the robot was silent, before its sound?"""

from __future__ import annotations

import numpy as np

from companion.loop.overlap import RobotVoice
from companion.messages import AudioChunk


def feed(voice: RobotVoice, spans: list[tuple[float, float, bool]]) -> None:
    """(from, to, the robot's sound may be in it) in 30 ms chunks."""
    for start, end, audible in spans:
        for i in range(round((end - start) / 0.03)):
            voice.update(AudioChunk(np.zeros(480, dtype=np.int16), 16000, start + i * 0.03), audible)


def test_only_a_voice_that_began_in_the_quiet_before_the_robots_sound_came_first():
    voice = RobotVoice()
    feed(voice, [(0.0, 3.6, True), (3.6, 6.0, False), (6.0, 9.0, True)])
    assert voice.came_first(5.0)  # in the quiet between two replies
    assert not voice.came_first(3.3)  # while the last one (or its echo tail) could be heard
    assert not voice.came_first(6.5)  # over the reply
    assert not voice.came_first(None)  # no voice


def test_nothing_came_first_before_the_robot_made_a_sound():
    voice = RobotVoice()
    assert not voice.came_first(1.0)
    feed(voice, [(0.0, 1.5, False)])
    assert not voice.came_first(1.0)
