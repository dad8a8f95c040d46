"""The control API's HTTP server (stdlib only): loopback TCP or a 0600 Unix socket.

Routes::

    GET  /health    -> {"ok": true, "kind": "daemon"|"serve", ...}
    GET  /status    -> state, persona, uptime, last turn timings
    POST /say       {"text", "persona"?, "speed"?, "raw"?, "play"?}
                    -> audio/wav (X-Companion-Spoken: the spoken text, URL-encoded)
                       or, with "play": true, JSON after queueing it on the speaker
    POST /persona   {"name"} -> swaps the persona (400 with the reason if it is bad)

Errors are JSON ``{"error": "one line"}`` with 400/401/404/405/408/411/413/5xx; a bad
request never takes the server down. Every request is bounded in size, time and
concurrency (:mod:`companion.control.guards`, :mod:`companion.limits`): HEAD, OPTIONS
and any other method get 405; a request that is not in within ``control.request_timeout_s``
gets 408; past ``control.max_connections`` connections, a 503 at once.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, urlsplit

from companion import limits
from companion.control.backend import ApiError, Backend, SayRequest, decode_json, persona_name
from companion.control.client import CHANGED_HEADER, NO_SPEAKER, PERSONA_HEADER, SPOKEN_HEADER
from companion.control.guards import AuthGate, ConnectionSlots, Deadlines
from companion.control.listen import bind_tcp, bind_unix, remove_socket
from companion.control.settings import ControlSettings, is_loopback
from companion.errors import NoAudioDeviceError, UserError
from companion.settings import ConfigError

_log = logging.getLogger(__name__)

MAX_SPOKEN_HEADER = 8000
"""Longer spoken text is cut (with '…') to keep the header within clients' limits."""
_DRAIN_LIMIT = 16 * 1024 * 1024
"""An oversized body up to this size is read and dropped, so the client sees the 413."""
_WRITE_TIMEOUT_S = 30.0
"""An answer must be taken by the client within this."""


class _Handler(BaseHTTPRequestHandler):
    server_version = "companion-control"
    timeout = limits.IDLE_TIMEOUT_S  # seconds a client may go quiet while sending its request
    control: ControlServer  # set on the per-server subclass
    _ticket: int | None = None
    _body_read = False

    # ---- plumbing -----------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self._ticket = self.control.deadlines.watch(self.connection, self.control.settings.request_timeout_s)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._ticket is not None:
            self.control.deadlines.forget(self._ticket)

    def _request_in(self) -> None:
        """The whole request has arrived: its deadline no longer applies (the answer may take longer)."""
        if self._ticket is not None:
            self.control.deadlines.done(self._ticket)
        self.connection.settimeout(_WRITE_TIMEOUT_S)

    def _late(self) -> bool:
        return self._ticket is not None and self.control.deadlines.expired(self._ticket)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    def address_string(self) -> str:
        return str(self.client_address[0]) if isinstance(self.client_address, tuple) else "unix"

    def __getattr__(self, name: str) -> Any:
        # every method (HEAD, OPTIONS, BREW, ...) goes through the routes: 405 unless a route has it
        if name.startswith("do_"):
            return lambda: self._dispatch(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own errors (bad request line, headers too long) as one-line JSON."""
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        if self._late():
            code, text = 408, self._late_message()
        self.send_json(code, {"error": text.splitlines()[0] if text else str(code)})

    def _late_message(self) -> str:
        return f"request not received within {self.control.settings.request_timeout_s:g} s (control.request_timeout_s)"

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        self.close_connection = True
        try:
            if self._late():
                raise ApiError(408, self._late_message())
            if method != "POST":  # no body to wait for
                self._request_in()
            self._authorize()
            path = urlsplit(self.path).path.rstrip("/") or "/"
            methods = self.control.routes.get(path)
            if methods is None:
                raise ApiError(404, f"no such route {path[:80]} (have: {', '.join(sorted(self.control.routes))})")
            handler = methods.get(method)
            if handler is None:
                raise _MethodNotAllowed(sorted(methods))
            handler(self)
        except _MethodNotAllowed as exc:
            self.send_json(405, {"error": f"use {' or '.join(exc.allowed)} here"}, {"Allow": ", ".join(exc.allowed)})
        except RecursionError:
            self.send_json(400, {"error": "the request is nested too deeply"})
        except ApiError as exc:
            extra = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            self.send_json(exc.status, {"error": str(exc)}, extra)
        except ConfigError as exc:
            self.send_json(400, {"error": str(exc)})
        except NoAudioDeviceError as exc:
            self.send_json(503, {"error": str(exc), "reason": NO_SPEAKER})
        except UserError as exc:
            self.send_json(500, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            _log.debug("client went away or stopped reading")
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
        sent = value.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent, token.encode()):
            self.control.auth.failed()
            raise ApiError(401, "missing or wrong token (send Authorization: Bearer TOKEN)")

    def read_json(self) -> Any:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise ApiError(411, "send a Content-Length header")
        try:
            length = int(length_header.strip()) if length_header.strip().isdigit() else -1
            if length < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, f"bad Content-Length {length_header[:40]!r}") from None
        limit = self.control.settings.max_body_bytes
        self._body_read = True
        if length > limit:
            self._drain(length)
            raise ApiError(413, f"request too large ({length} bytes; the limit is {limit}, control.max_body_kb)")
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise ApiError(408, f"the body stopped coming (no data for {limits.IDLE_TIMEOUT_S:g} s)") from None
        if self._late():
            raise ApiError(408, self._late_message() + f": got {len(body)} of {length} body bytes")
        if len(body) < length:
            raise ApiError(400, f"the body ended after {len(body)} of its Content-Length {length} bytes")
        self._request_in()
        return decode_json(body)

    def _discard_body(self) -> None:
        """Read a body nobody asked for: closing on unread data would reset the connection, answer and all."""
        self._body_read = True
        length = (getattr(self, "headers", None) or {}).get("Content-Length", "")
        if length.strip().isdigit() and not self._late():
            self._drain(int(length.strip()))

    def _drain(self, length: int) -> None:
        if length > _DRAIN_LIMIT:
            return
        with contextlib.suppress(OSError, ValueError):
            while length > 0:
                chunk = self.rfile.read(min(length, 65536))
                if not chunk:
                    break
                length -= len(chunk)

    def send_json(self, status: int, data: dict[str, object], headers: dict[str, str] | None = None) -> None:
        # ASCII JSON: any text, even a lone surrogate quoted in an error, can be sent
        self.send_body(status, json.dumps(data, ensure_ascii=True).encode("ascii"), "application/json", headers)

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            if not self._body_read:
                self._discard_body()
            if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
                self.request_version = "HTTP/1.0"  # always a status line and headers, even to garbage
            self.connection.settimeout(_WRITE_TIMEOUT_S)
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
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
    req = SayRequest.from_json(h.read_json(), h.control.settings.max_text_chars)
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
        self.deadlines = Deadlines()
        self._socket_inode: int | None = None
        self.auth = AuthGate()
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
        slots = ConnectionSlots(s.max_connections)
        if s.socket is not None:
            self._server, self._socket_inode = bind_unix(s.socket, handler, slots)
        else:
            self._server = bind_tcp(s.host, s.port, handler, slots)
        self.deadlines.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="companion-control", daemon=True
        )
        self._thread.start()
        _log.info("control API on %s%s", self.address, " (token required)" if s.token else "")

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        self.deadlines.stop()
        if thread is not None:
            thread.join(timeout=5)
        if self.settings.socket is not None:
            remove_socket(self.settings.socket.expanduser(), self._socket_inode)
        _log.info("control API stopped")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
