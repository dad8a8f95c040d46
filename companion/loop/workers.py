"""The loop's threads: started in order, each guarded so a bug in one ends the loop cleanly."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from companion.loop.state import Heartbeats

_log = logging.getLogger(__name__)


class Workers:
    """Owns the worker threads. ``on_crash(name, exc)`` runs when a worker raises."""

    def __init__(self, beats: Heartbeats, on_crash: Callable[[str, BaseException], None]) -> None:
        self.beats = beats
        self.on_crash = on_crash
        self.threads: list[threading.Thread] = []

    def start(self, targets: list[tuple[str, Callable[[], None]]], last: Callable[[], None]) -> None:
        """Start each ``(name, run)``; ``last`` runs when the first of them (the output end) exits."""
        for i, (name, target) in enumerate(targets):
            t = threading.Thread(target=self._guard(name, target, last if i == 0 else None), name=name, daemon=True)
            self.threads.append(t)
            self.beats.add(name)
            t.start()

    def _guard(self, name: str, target: Callable[[], None], last: Callable[[], None] | None) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # a bug in the loop itself: log it, end cleanly
                _log.exception("%s failed", name)
                self.on_crash(name, exc)
            finally:
                if last is not None:
                    last()

        return run

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every worker to finish; True if they did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self.threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            t.join(remaining)
        return not self.running
