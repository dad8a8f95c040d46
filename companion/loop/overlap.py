"""Did a voice begin before the robot's sound reached the microphone?

A voice that began while the speaker was silent (its echo tail included) cannot be the
robot's echo: the user talked first, and the reply (to the first half of what they said:
"Wait, stop. [an 810 ms pause] What is your name?") started over them. The echo
canceller's leak check cannot tell that case apart: a filter that adapts while a voice
and the reply's first echo arrive together lets some echo through, which follows the
speaker as sharply as a leak, and the bench missed interruptions for it. When is taken
from the echo path (:attr:`EchoPath.echo_possible`: what the speaker played, where its
echo lands on the microphone's timeline), not from when the reply was handed to the
speaker, which is earlier by the output latency and the echo's own delay.
"""

from __future__ import annotations

import math

from companion.messages import AudioChunk


class RobotVoice:
    """Runs of microphone chunks that may hold the robot's sound, on the microphone's timeline."""

    def __init__(self) -> None:
        self._from = -math.inf  # the start of the run going on (or the last one)
        self._quiet_from = -math.inf  # ...and the end of the run before it
        self._until = -math.inf  # the end of the last chunk that may hold the robot's sound
        self._audible = False

    def update(self, chunk: AudioChunk, audible: bool) -> None:
        """One microphone chunk; ``audible``: it may hold the robot's sound or echo."""
        if audible and not self._audible:
            self._quiet_from, self._from = self._until, chunk.start_s
        if audible:
            self._until = chunk.end_s
        self._audible = audible

    def came_first(self, onset_s: float | None) -> bool:
        """Did a voice with this onset begin while the robot was silent, just before its sound?"""
        return onset_s is not None and self._quiet_from <= onset_s < self._from
