"""The control API's listening sockets: loopback TCP (v4/v6) or a 0600 Unix socket, threads bounded.

A thread serves each connection, but at most ``slots.limit`` at once: the next
ones get a 503 from the accepting thread (:class:`~companion.control.guards.ConnectionSlots`).
A Unix socket path is only ever replaced when it holds a socket nobody listens on
(a crash's leftover), and removed at the end only if it is still ours.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import stat
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from companion.control.guards import ConnectionSlots
from companion.errors import UserError


class _Bounded(socketserver.ThreadingMixIn):
    """A thread per connection, but at most ``slots.limit`` of them; the others get a 503 at once."""

    daemon_threads = True
    request_queue_size = 128  # a burst of connections is accepted (and refused past the bound) at once
    slots: ConnectionSlots
    shutdown_request: Callable[[Any], None]  # of the server class this is mixed into

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.take():
            self.slots.refuse(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.give_back()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give_back()


class _TcpServer(_Bounded, ThreadingHTTPServer):
    pass


class _Tcp6Server(_TcpServer):
    address_family = socket.AF_INET6


class _UnixServer(_Bounded, socketserver.UnixStreamServer):
    def server_bind(self) -> None:
        old = os.umask(0o177)  # created 0600: no window where others could connect
        try:
            super().server_bind()
        finally:
            os.umask(old)
        os.chmod(str(self.server_address), 0o600)


def bind_tcp(
    host: str, port: int, handler: type[BaseHTTPRequestHandler], slots: ConnectionSlots
) -> socketserver.BaseServer:
    cls = _Tcp6Server if ":" in host else _TcpServer
    try:
        server = cls((host.strip("[]"), port), handler)
    except OSError as exc:
        raise UserError(
            f"control API: cannot listen on {host}:{port}: {exc.strerror or exc} "
            "(is another companion running? change control.port)"
        ) from None
    server.slots = slots
    return server


def bind_unix(
    path: Path, handler: type[BaseHTTPRequestHandler], slots: ConnectionSlots
) -> tuple[socketserver.BaseServer, int]:
    """The server on ``path`` and the socket's inode (for :func:`remove_socket`)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise UserError(
                f"control API: {path} exists and is not a socket; refusing to replace it "
                "(move it away, or set control.socket to another path)"
            )
        if _someone_listens(path):
            raise UserError(f"control API: {path} is in use (is another companion running?)")
        path.unlink()  # a socket left by a crash
    try:
        server = _UnixServer(str(path), handler)
    except OSError as exc:
        raise UserError(f"control API: cannot listen on {path}: {exc.strerror or exc}") from None
    server.slots = slots
    return server, path.lstat().st_ino


def remove_socket(path: Path, inode: int | None) -> None:
    """Unlink ``path`` if it is still the socket we made (not a file someone put there since)."""
    with contextlib.suppress(OSError):
        st = path.lstat()
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == inode:
            path.unlink()


def _someone_listens(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True
