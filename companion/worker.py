"""A thread of its own for a native library that should always be called from one thread."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
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


class _End:
    """Marks the end of a background iteration."""


def iterate_in_thread(
    make: Callable[[], Iterable[T]], *, name: str, timeout: float | None = None, ahead: int = 0
) -> Iterator[T]:
    """Iterate ``make()`` on a helper thread, yielding its items here as they come.

    ``timeout``: raise :class:`TimeoutError` when no item arrives for that long (a hung
    native call then costs one stuck helper, not the caller). ``ahead`` bounds how far the
    helper may run ahead (0 = unbounded). When the reader stops early the helper stops
    after its current item, and is given ``timeout`` (or a second) to wind down, so its
    stream is closed before this returns.
    """
    items: queue.Queue[T | BaseException | _End] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        stream = None
        try:
            stream = make()
            for item in stream:
                if stop.is_set():
                    break
                items.put(item)
        except BaseException as exc:
            items.put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            items.put(_End())

    helper = threading.Thread(target=produce, name=name, daemon=True)
    helper.start()
    try:
        while True:
            try:
                item = items.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"nothing from {name} in {timeout:g} s") from None
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        deadline = time.monotonic() + (timeout or 1.0)
        while helper.is_alive() and time.monotonic() < deadline:  # drain: unblock a full queue
            with contextlib.suppress(queue.Empty):
                items.get(timeout=0.05)
