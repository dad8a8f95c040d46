"""The control API's HTTP server (stdlib only): loopback TCP or a 0600 Unix socket.

Routes::

    GET  /health    -> {"ok": true, "kind": "daemon"|"serve", ...}
    GET  /status    -> state, persona, uptime, last turn timings
    POST /say       {"text", "persona"?, "speed"?, "raw"?, "play"?}
                    -> audio/wav (X-Companion-Spoken: the spoken text, URL-encoded)
                       or, with "play": true, JSON after queueing it on the speaker
    POST /persona   {"name"} -> swaps the persona (400 with the reason if it is bad)

Errors are JSON ``{"error": "one line"}`` with 400/401/404/405/411/413/5xx; a bad
request never takes the server down.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from companion.control.backend import ApiError, Backend, SayRequest, persona_name
from companion.control.client import CHANGED_HEADER, NO_SPEAKER, PERSONA_HEADER, SPOKEN_HEADER
from companion.control.settings import ControlSettings, is_loopback
from companion.errors import NoAudioDeviceError, UserError
from companion.settings import ConfigError

_log = logging.getLogger(__name__)

MAX_SPOKEN_HEADER = 8000
"""Longer spoken text is cut (with '…') to keep the header within clients' limits."""
_DRAIN_LIMIT = 16 * 1024 * 1024
"""An oversized body up to this size is read and dropped, so the client sees the 413."""


class _TcpServer(ThreadingHTTPServer):
    daemon_threads = True


class _Tcp6Server(_TcpServer):
    address_family = socket.AF_INET6


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def server_bind(self) -> None:
        old = os.umask(0o177)  # created 0600: no window where others could connect
        try:
            super().server_bind()
        finally:
            os.umask(old)
        os.chmod(str(self.server_address), 0o600)


class _Handler(BaseHTTPRequestHandler):
    server_version = "companion-control"
    timeout = 30  # seconds a client may take to send its request
    control: ControlServer  # set on the per-server subclass

    # ---- plumbing -----------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def address_string(self) -> str:
        return str(self.client_address[0]) if isinstance(self.client_address, tuple) else "unix"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        try:
            self._authorize()
            path = urlsplit(self.path).path.rstrip("/") or "/"
            methods = self.control.routes.get(path)
            if methods is None:
                raise ApiError(404, f"no such route {path} (have: {', '.join(sorted(self.control.routes))})")
            handler = methods.get(method)
            if handler is None:
                raise _MethodNotAllowed(sorted(methods))
            handler(self)
        except _MethodNotAllowed as exc:
            self.send_json(405, {"error": f"use {' or '.join(exc.allowed)} here"}, {"Allow": ", ".join(exc.allowed)})
        except ApiError as exc:
            extra = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            self.send_json(exc.status, {"error": str(exc)}, extra)
        except ConfigError as exc:
            self.send_json(400, {"error": str(exc)})
        except NoAudioDeviceError as exc:
            self.send_json(503, {"error": str(exc), "reason": NO_SPEAKER})
        except UserError as exc:
            self.send_json(500, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("client went away")
        except Exception as exc:
            _log.exception("control API: %s %s failed", method, self.path)
            self.send_json(500, {"error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]})
        finally:
            _log.debug("%s %s took %.1f ms", method, self.path, (time.perf_counter() - started) * 1000)

    def _authorize(self) -> None:
        token = self.control.settings.token
        if not token:
            return
        got = self.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "missing or wrong token (send Authorization: Bearer TOKEN)")

    def read_json(self) -> Any:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise ApiError(411, "send a Content-Length header")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, f"bad Content-Length {length_header!r}") from None
        limit = self.control.settings.max_body_bytes
        if length > limit:
            self._drain(length)
            self.close_connection = True
            raise ApiError(413, f"request too large ({length} bytes; the limit is {limit}, control.max_body_kb)")
        body = self.rfile.read(length)
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, f"bad JSON: {exc}") from None

    def _drain(self, length: int) -> None:
        if length > _DRAIN_LIMIT:
            return
        with contextlib.suppress(OSError):
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    break
                length -= len(chunk)

    def send_json(self, status: int, data: dict[str, object], headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json", headers)

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("client went away before the answer")


class _MethodNotAllowed(Exception):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__(allowed)
        self.allowed = allowed


# ---- routes ---------------------------------------------------------------------------------


def _health(h: _Handler) -> None:
    h.send_json(200, h.control.backend.health())


def _status(h: _Handler) -> None:
    h.send_json(200, h.control.backend.status())


def _say(h: _Handler) -> None:
    req = SayRequest.from_json(h.read_json())
    backend = h.control.backend
    if req.play:
        h.send_json(200, backend.play(req.text, req.persona, req.speed, req.raw))
        return
    out = backend.synthesize(req.text, req.persona, req.speed, req.raw)
    spoken = out.spoken if len(out.spoken) <= MAX_SPOKEN_HEADER else out.spoken[:MAX_SPOKEN_HEADER] + "…"
    headers = {
        SPOKEN_HEADER: quote(spoken, safe=""),
        PERSONA_HEADER: quote(out.persona, safe=""),
        CHANGED_HEADER: "1" if out.changed else "0",
    }
    h.send_body(200, out.wav, "audio/wav", headers)


def _persona(h: _Handler) -> None:
    h.send_json(200, h.control.backend.set_persona(persona_name(h.read_json())))


Route = Callable[[_Handler], None]
ROUTES: dict[str, dict[str, Route]] = {
    "/health": {"GET": _health},
    "/status": {"GET": _status},
    "/say": {"POST": _say},
    "/persona": {"POST": _persona},
}


# ---- the server -----------------------------------------------------------------------------


class ControlServer:
    """Serves ``backend`` in a thread named ``companion-control``; :meth:`start` binds, :meth:`stop` ends it."""

    def __init__(self, backend: Backend, settings: ControlSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.routes = ROUTES
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        if self.settings.socket is not None:
            return f"unix:{self.settings.socket}"
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.settings.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        s = self.settings
        if s.socket is None and not is_loopback(s.host) and not s.token:
            raise UserError(f"control API: refusing to listen on {s.host} without a token (set control.token)")
        handler = type("Handler", (_Handler,), {"control": self})
        self._server = self._bind_unix(s.socket, handler) if s.socket is not None else self._bind_tcp(handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="companion-control", daemon=True
        )
        self._thread.start()
        _log.info("control API on %s%s", self.address, " (token required)" if s.token else "")

    def _bind_tcp(self, handler: type[_Handler]) -> socketserver.BaseServer:
        host, port = self.settings.host, self.settings.port
        cls = _Tcp6Server if ":" in host else _TcpServer
        try:
            return cls((host.strip("[]"), port), handler)
        except OSError as exc:
            raise UserError(
                f"control API: cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(is another companion running? change control.port)"
            ) from None

    def _bind_unix(self, path: Path, handler: type[_Handler]) -> socketserver.BaseServer:
        path = path.expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if _someone_listens(path):
                raise UserError(f"control API: {path} is in use (is another companion running?)")
            path.unlink()
        try:
            return _UnixServer(str(path), handler)
        except OSError as exc:
            raise UserError(f"control API: cannot listen on {path}: {exc.strerror or exc}") from None

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        if self.settings.socket is not None:
            with contextlib.suppress(OSError):
                self.settings.socket.expanduser().unlink()
        _log.info("control API stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _someone_listens(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True
