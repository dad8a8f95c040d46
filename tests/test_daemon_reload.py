"""A storm of SIGHUPs becomes one or two reloads on one thread, not a thread per signal."""

from __future__ import annotations

import threading
import time

import numpy as np

from companion.audio.sinks import FileSink
from companion.audio.sources import FileSource
from companion.config import load_config
from companion.daemon import Daemon
from companion.persona import load_persona


class CountingDaemon(Daemon):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reloads = 0

    def reload(self) -> bool:
        self.reloads += 1
        time.sleep(0.2)  # a reload takes a while (config, persona, voice)
        return True


def test_fifty_reload_requests_in_a_burst_coalesce(tmp_path):
    loaded = load_config()
    daemon = CountingDaemon(
        loaded,
        load_persona("default", None),
        source=FileSource(np.zeros(1600, dtype=np.int16)),
        sink=FileSink(tmp_path),
        conversation_log=False,
    )
    before = threading.active_count()
    for _ in range(50):
        daemon.request_reload()
        time.sleep(0.004)
    assert threading.active_count() <= before + 1
    deadline = time.monotonic() + 5
    while daemon.reloading and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 1 <= daemon.reloads <= 3
