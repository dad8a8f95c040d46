"""A loopback TCP relay that records when the client's bytes pass: a tap on a real connection."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class Tap:
    """Listens on 127.0.0.1; relays each connection to ``target`` (host, port) both ways.

    ``sent`` holds (time.monotonic(), bytes) for every read from a client, in order.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sent: list[tuple[float, int]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        threading.Thread(target=self._accept, name="tap-accept", daemon=True).start()

    @property
    def uri(self) -> str:
        return f"tcp://127.0.0.1:{self._server.getsockname()[1]}"

    def bytes_before(self, t: float) -> int:
        with self._lock:
            return sum(n for at, n in self.sent if at <= t)

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        try:
            while data := src.recv(65536):
                if record:
                    with self._lock:
                        self.sent.append((time.monotonic(), len(data)))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
