"""Read a remote stream on a helper thread, with a deadline for its first item and for each next one.

The reader never waits longer than its deadlines, whatever the network does: a hung
server costs one helper thread, which ends when its socket timeout fires.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from companion.remote.health import RemoteError

T = TypeVar("T")


class _End:
    pass


class Relay(Generic[T]):
    """``make()`` iterated on a thread named ``name``; :meth:`first` then :meth:`rest`."""

    def __init__(self, make: Callable[[], Iterable[T]], *, name: str, ahead: int = 256) -> None:
        self._items: queue.Queue[T | BaseException | _End] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._make = make
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        stream: Iterable[T] | None = None
        try:
            stream = self._make()
            for item in stream:
                if self._stop.is_set():
                    break
                self._put(item)
        except BaseException as exc:
            self._put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):  # closing an abandoned remote stream
                    close()
            self._put(_End())

    def _put(self, item: T | BaseException | _End) -> None:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _get(self, timeout: float, what: str) -> T | None:
        try:
            item = self._items.get(timeout=timeout)
        except queue.Empty:
            raise RemoteError(f"no {what} within {timeout:g} s") from None
        if isinstance(item, _End):
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def first(self, timeout: float) -> T | None:
        """The first item (None: the stream was empty); RemoteError if none came in time."""
        return self._get(timeout, "answer")

    def rest(self, timeout: float) -> Iterator[T]:
        """The following items, each due within ``timeout`` of the one before."""
        while (item := self._get(timeout, "more")) is not None:
            yield item

    def close(self) -> None:
        """Stop reading; the helper ends after its current item (or its socket timeout)."""
        self._stop.set()
