"""Real-time scheduling for the threads that move audio.

A sound card's buffer is a few tens of milliseconds. A callback thread that waits
behind the LLM and the TTS on a busy two-core board misses it: the speaker plays a
gap (an underrun) and everything after it is heard later, or the microphone drops
samples. Either moves the echo under the echo canceller, which then has to learn the
room again. So the threads that only copy audio ask for SCHED_FIFO, as sound servers
do; where that is not allowed (no CAP_SYS_NICE / RLIMIT_RTPRIO) they run as before.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger(__name__)

PRIORITY = 20
"""Above ordinary work, below the kernel's own audio threads and a sound server's (often 20-90)."""


def make_realtime(priority: int = PRIORITY) -> bool:
    """Run the calling thread at real-time priority where allowed; True if it now does."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        _log.debug("audio thread stays at normal priority: %s", exc)
        return False
    return True
