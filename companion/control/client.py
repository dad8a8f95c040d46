"""Talking to a running daemon (or ``companion serve``) over the control API.

Stdlib only and light to import: ``companion say`` loads this before it knows
whether a daemon is there. A missing daemon costs one refused connect (at most
``control.connect_timeout_s``) and raises :class:`DaemonNotRunning`.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from companion.control.settings import ControlSettings
from companion.errors import UserError

NO_SPEAKER = "no-speaker"
"""The ``reason`` of a 503 answer when the daemon's machine has no usable speaker."""
SPOKEN_HEADER = "X-Companion-Spoken"
PERSONA_HEADER = "X-Companion-Persona"
CHANGED_HEADER = "X-Companion-Changed"


class DaemonNotRunning(UserError):
    """Nothing answers at the configured address."""


class ControlRequestError(UserError):
    """The daemon answered with an error; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        """A machine-readable reason when the daemon gives one (``no-speaker``)."""


@dataclass(frozen=True)
class SaidAudio:
    wav: bytes
    spoken: str
    persona: str
    changed: bool


class _Connection(http.client.HTTPConnection):
    """Connects within ``connect_timeout``, then waits up to ``read_timeout`` for the answer."""

    def __init__(
        self,
        host: str,
        port: int | None,
        connect_timeout: float,
        read_timeout: float | None,
        unix_path: str | None = None,
    ) -> None:
        super().__init__(host, port, timeout=connect_timeout)
        self.read_timeout = read_timeout
        self.unix_path = unix_path

    def connect(self) -> None:
        if self.unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.unix_path)
            except OSError:
                sock.close()
                raise
            self.sock = sock
        else:
            super().connect()
        self.sock.settimeout(self.read_timeout)


class ControlClient:
    """Requests to the control API described by ``settings``."""

    def __init__(self, settings: ControlSettings, *, read_timeout: float | None = 600.0) -> None:
        self.settings = settings
        self.read_timeout = read_timeout
        host = settings.host.strip("[]")
        # a server bound to every address is reached on loopback
        self.host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)

    @property
    def address(self) -> str:
        if self.settings.socket is not None:
            return f"unix:{self.settings.socket}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.settings.port}"

    # ---- requests -----------------------------------------------------------------------

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Send one request and read the answer; raises :class:`DaemonNotRunning` if nobody listens."""
        s = self.settings
        if s.token and not (s.token.isascii() and s.token.isprintable()):
            raise UserError("control.token must be printable ASCII (e.g. from 'openssl rand -hex 16')")
        unix = str(s.socket.expanduser()) if s.socket is not None else None
        conn = _Connection(self.host, s.port, s.connect_timeout_s, self.read_timeout, unix)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise DaemonNotRunning(f"no daemon at {self.address} ({exc.strerror or exc})") from None
        headers = {"Accept": "application/json, audio/wav"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if s.token:
            headers["Authorization"] = f"Bearer {s.token}"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException, UnicodeError) as exc:
            raise ControlRequestError(0, f"the daemon at {self.address} did not answer: {exc}") from None
        finally:
            conn.close()
        if response.status >= 400:
            message, reason = _error_message(response.status, data)
            raise ControlRequestError(response.status, message, reason)
        return response, data

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        _, data = self._call(method, path, body)
        try:
            out = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ControlRequestError(200, f"the daemon at {self.address} sent something that is not JSON") from None
        if not isinstance(out, dict):
            raise ControlRequestError(200, f"the daemon at {self.address} sent unexpected JSON")
        return out

    # ---- the API ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def status(self) -> dict[str, Any]:
        return self._json("GET", "/status")

    def synthesize(
        self, text: str, *, persona: str | None = None, speed: float | None = None, raw: bool = False
    ) -> SaidAudio:
        """``text`` as a WAV file, in the daemon's voice (or ``persona``'s)."""
        response, data = self._call("POST", "/say", _say_body(text, persona, speed, raw, play=False))
        return SaidAudio(
            wav=data,
            spoken=unquote(response.getheader(SPOKEN_HEADER, "")),
            persona=unquote(response.getheader(PERSONA_HEADER, "")),
            changed=response.getheader(CHANGED_HEADER, "0") == "1",
        )

    def play(
        self, text: str, *, persona: str | None = None, speed: float | None = None, raw: bool = False
    ) -> dict[str, Any]:
        """Say ``text`` on the robot's speaker; returns once it is queued."""
        return self._json("POST", "/say", _say_body(text, persona, speed, raw, play=True))

    def set_persona(self, name: str) -> dict[str, Any]:
        """Swap the running daemon's persona (``companion persona use``)."""
        return self._json("POST", "/persona", {"name": name})


def _say_body(text: str, persona: str | None, speed: float | None, raw: bool, *, play: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text, "raw": raw, "play": play}
    if persona is not None:
        body["persona"] = persona
    if speed is not None:
        body["speed"] = speed
    return body


def _error_message(status: int, data: bytes) -> tuple[str, str]:
    try:
        answer = json.loads(data.decode("utf-8"))
        message, reason = answer.get("error"), answer.get("reason")
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        message = reason = None
    return (str(message) if message else f"the daemon answered HTTP {status}"), str(reason or "")
