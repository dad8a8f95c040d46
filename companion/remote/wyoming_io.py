"""A blocking Wyoming client connection for the loop's threads, with timeouts and size limits.

Events are the ``wyoming`` package's own (``Event``, ``write_event``, the typed
``Transcribe`` / ``Synthesize`` / ``Info`` ...). Reading is done here rather than with
``wyoming.event.read_event`` so that a peer sending garbage cannot make us buffer
without bound: header lines, data and payloads have caps, and anything that does
not parse is a :class:`RemoteError` naming the server.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from typing import IO, Any, BinaryIO, cast
from urllib.parse import urlparse

from companion.remote.health import RemoteError

MAX_LINE = 64 * 1024
MAX_DATA = 1024 * 1024
MAX_PAYLOAD = 16 * 1024 * 1024


def parse_tcp_uri(uri: str, *, key: str = "uri") -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (host, port); ValueError with a one-line reason otherwise."""
    parsed = urlparse(uri)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None:
        raise ValueError(f"{key}: expected tcp://HOST:PORT, got {uri!r}")
    return parsed.hostname, port


class WyomingConnection:
    """One TCP connection to a Wyoming server. Not thread-safe: one user at a time."""

    def __init__(self, uri: str, *, connect_timeout: float, timeout: float) -> None:
        from wyoming.event import Event

        self._event_type = Event
        self.uri = uri
        host, port = parse_tcp_uri(uri)
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout)
        except TimeoutError:
            raise RemoteError(f"{uri}: no connection in {connect_timeout:g} s") from None
        except OSError as exc:
            raise RemoteError(f"{uri}: cannot connect ({exc.strerror or exc})") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(timeout)
        self.timeout = timeout
        self._rfile: IO[bytes] = self._sock.makefile("rb")
        self._wfile: IO[bytes] = self._sock.makefile("wb")

    def send(self, event: Any) -> None:
        """Send a ``wyoming`` Event (or an Eventable, e.g. ``Transcribe()``)."""
        from wyoming.event import write_event

        if not isinstance(event, self._event_type):
            event = event.event()
        try:
            write_event(event, cast(BinaryIO, self._wfile))
        except (OSError, ValueError) as exc:
            raise RemoteError(f"{self.uri}: sending failed ({exc})") from None

    def receive(self, deadline: float | None = None) -> Any:
        """The next event; ``deadline`` (monotonic seconds) bounds the wait, else the connection timeout."""
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RemoteError(f"{self.uri}: no answer in time")
            self._sock.settimeout(min(left, self.timeout))
        try:
            return self._read_event()
        except TimeoutError:
            raise RemoteError(f"{self.uri}: no answer in time") from None
        except OSError as exc:
            raise RemoteError(f"{self.uri}: connection lost ({exc.strerror or exc})") from None

    def _read_event(self) -> Any:
        line = self._rfile.readline(MAX_LINE)
        if not line:
            raise RemoteError(f"{self.uri}: the server closed the connection")
        if not line.endswith(b"\n"):
            raise RemoteError(f"{self.uri}: sent a header line over {MAX_LINE} bytes (not Wyoming?)")
        try:
            header = json.loads(line)
            kind = header["type"]
            data = header.get("data") or {}
            data_length = int(header.get("data_length") or 0)
            payload_length = int(header.get("payload_length") or 0)
            if not isinstance(kind, str) or not isinstance(data, dict):
                raise TypeError("bad type or data")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RemoteError(f"{self.uri}: sent something that is not a Wyoming event: {line[:60]!r}") from None
        if not 0 <= data_length <= MAX_DATA or not 0 <= payload_length <= MAX_PAYLOAD:
            raise RemoteError(f"{self.uri}: event {kind!r} announces {data_length + payload_length} bytes: too many")
        if data_length:
            try:
                extra = json.loads(self._read_exactly(data_length))
                data.update(extra)
            except (ValueError, TypeError, AttributeError):
                raise RemoteError(f"{self.uri}: event {kind!r} has data that is not a JSON object") from None
        payload = self._read_exactly(payload_length) if payload_length else None
        return self._event_type(type=kind, data=data, payload=payload)

    def _read_exactly(self, n: int) -> bytes:
        out = self._rfile.read(n)
        if out is None or len(out) < n:
            raise RemoteError(f"{self.uri}: the server closed the connection mid-event")
        return out

    def close(self) -> None:
        for f in (self._wfile, self._rfile):
            with contextlib.suppress(OSError):
                f.close()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __enter__(self) -> WyomingConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def describe(uri: str, *, connect_timeout: float = 1.0, timeout: float = 2.0) -> Any:
    """The server's ``wyoming.info.Info``; RemoteError when it does not answer one."""
    from wyoming.info import Describe, Info

    with WyomingConnection(uri, connect_timeout=connect_timeout, timeout=timeout) as conn:
        conn.send(Describe())
        deadline = time.monotonic() + timeout
        while True:
            event = conn.receive(deadline)
            if Info.is_type(event.type):
                try:
                    return Info.from_event(event)
                except Exception as exc:  # the server's info does not fit wyoming's dataclasses
                    raise RemoteError(f"{uri}: its info event is malformed ({exc})") from None
