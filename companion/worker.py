"""A thread of its own for a native library that should always be called from one thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """One long-lived daemon thread that runs the calls it is given, in order.

    llama.cpp and CTranslate2 parallelise with OpenMP, which keeps a thread team per
    calling thread; calling them from changing threads (loader, loop, speculative STT)
    left idle teams competing for the two cores, and decoding ran ~2.5x slower.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]] = queue.Queue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while True:
            fn, args, future = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((fn, args, future))
        return future

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.submit(fn, *args).result()
