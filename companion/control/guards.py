"""What keeps one client from tying up the control API: deadlines, a connection bound, slow token guessing.

* :class:`Deadlines`: one thread that cuts off a connection whose request (line,
  headers, body) has not arrived in time, by shutting the socket's read side; the
  handler still answers 408 on the write side.
* :class:`ConnectionSlots`: at most N connections are served at once; the next one
  gets a 503 straight away, from the accepting thread, instead of a thread of its own.
* :class:`AuthGate`: each wrong token is answered late, one failure at a time, and
  later the more failures there were in the last minute.

The limits' defaults and reasons are in :mod:`companion.limits`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from companion import limits

_log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Deadlines:
    """Shuts the read side of sockets whose deadline passed; :meth:`expired` tells the handler."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, socket.socket] = {}
        self._expired: set[int] = set()
        self._ids = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="companion-control-deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def watch(self, sock: socket.socket, seconds: float) -> int:
        """Cut ``sock`` off in ``seconds`` unless :meth:`done` is called first; returns a ticket."""
        with self._cond:
            ticket = next(self._ids)
            self._live[ticket] = sock
            heapq.heappush(self._heap, (self.clock() + seconds, ticket))
            self._cond.notify()
        return ticket

    def done(self, ticket: int) -> None:
        with self._cond:
            self._live.pop(ticket, None)

    def expired(self, ticket: int) -> bool:
        with self._cond:
            return ticket in self._expired

    def forget(self, ticket: int) -> None:
        with self._cond:
            self._live.pop(ticket, None)
            self._expired.discard(ticket)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                now = self.clock()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][1] not in self._live):
                    _, ticket = heapq.heappop(self._heap)
                    sock = self._live.pop(ticket, None)
                    if sock is not None:
                        self._expired.add(ticket)
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RD)  # a blocked read returns: the handler answers 408
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)


class ConnectionSlots:
    """At most ``limit`` connections at once; :meth:`refuse` answers the others with a 503."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)
        self.refused = 0

    def take(self) -> bool:
        return self._sem.acquire(blocking=False)

    def give_back(self) -> None:
        self._sem.release()

    def refuse(self, sock: socket.socket) -> None:
        """A 503 written without blocking, then the connection is closed by the caller."""
        self.refused += 1
        body = json.dumps({"error": f"too many connections (the limit is {self.limit}, control.max_connections)"})
        head = (
            "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.recv(65536)  # what the client sent already: closing with unread data would reset
            sock.send((head + body).encode("ascii"))
        if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
            _log.warning("control API: %d connection(s) refused: more than %d at once", self.refused, self.limit)


class AuthGate:
    """Slows token guessing: each failure waits its turn, then ``delay`` x recent failures."""

    def __init__(
        self,
        *,
        delay_s: float = limits.AUTH_FAIL_DELAY_S,
        max_delay_s: float = limits.AUTH_FAIL_MAX_DELAY_S,
        window_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.delay_s, self.max_delay_s, self.window_s = delay_s, max_delay_s, window_s
        self.clock, self.sleep = clock, sleep
        self._fails: deque[float] = deque()
        self._lock = threading.Lock()

    def failed(self) -> float:
        """Note a failure and wait before it is answered; returns the seconds waited."""
        with self._lock:  # one failure at a time: parallel guessing gains nothing
            now = self.clock()
            while self._fails and self._fails[0] < now - self.window_s:
                self._fails.popleft()
            self._fails.append(now)
            if len(self._fails) > 10_000:
                self._fails.popleft()
            delay = min(self.delay_s * len(self._fails), self.max_delay_s)
            self.sleep(delay)
            return delay
