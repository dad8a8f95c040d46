"""``companion voice review``: a local page for deciding, segment by segment, who is speaking.

The server listens on 127.0.0.1 only, and every request must carry the random token in
its path (``/TOKEN/...``) and a loopback ``Host`` header, so neither other users of the
machine nor web pages open in the browser can read or change the workspace. Each decision
is written to ``segments.json`` (atomically) before the request is answered.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import asdict
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import numpy as np

from companion.studio.workspace import DECISIONS, Segment, Workspace
from companion.voice.audio import load_mono

_log = logging.getLogger(__name__)

PEAKS = 160
"""Waveform columns sent per segment."""
MAX_BODY = 4096


@cache
def page() -> bytes:
    return resources.files("companion.studio").joinpath("review.html").read_bytes()


class ReviewServer:
    """Serves one workspace on ``127.0.0.1:port`` (0 = any free port) until :meth:`stop`."""

    def __init__(self, workspace: Workspace, port: int = 0, token: str | None = None) -> None:
        self.workspace = workspace
        self.token = token or secrets.token_urlsafe(18)
        self._peaks: dict[str, list[float]] = {}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.token}/"

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="companion-review", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def peaks(self, seg: Segment) -> list[float]:
        if seg.id not in self._peaks:
            audio, _ = load_mono(self.workspace.path / seg.audio_name())
            cols = np.array_split(np.abs(audio), PEAKS) if audio.size >= PEAKS else [audio]
            top = [float(c.max()) if c.size else 0.0 for c in cols]
            scale = max(max(top), 1e-6)
            self._peaks[seg.id] = [round(v / scale, 3) for v in top]
        return self._peaks[seg.id]

    def listing(self) -> dict[str, Any]:
        segs = [
            {**asdict(s), "duration_s": round(s.duration_s, 3), "peaks": self.peaks(s)} for s in self.workspace.segments
        ]
        return {"workspace": str(self.workspace.path), "targets": self.workspace.targets, "segments": segs}

    def decide(self, body: dict[str, Any]) -> Segment:
        """Apply one change from the page: ``{"id", "decision"?, "trim_start_s"?, "trim_end_s"?}``."""
        seg = self.workspace.segment(str(body.get("id")))
        changes: dict[str, Any] = {}
        if "decision" in body:
            if body["decision"] not in DECISIONS:
                raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
            changes["decision"] = body["decision"]
        for key in ("trim_start_s", "trim_end_s"):
            if key in body:
                value = float(body[key])
                if not 0 <= value <= seg.duration_s:
                    raise ValueError(f"{key} must be between 0 and the segment's {seg.duration_s:.2f} s")
                changes[key] = round(value, 3)
        if (
            changes.get("trim_start_s", seg.trim_start_s) + changes.get("trim_end_s", seg.trim_end_s)
            > seg.duration_s - 0.1
        ):
            raise ValueError("the trims leave less than 0.1 s of the segment")
        return self.workspace.update(seg.id, **changes)


def _handler(server: ReviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("review: " + format, *args)

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode())

        def _route(self) -> str | None:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            prefix = f"/{server.token}/"
            if host not in ("127.0.0.1", "localhost") or not self.path.startswith(prefix):
                self._json(HTTPStatus.FORBIDDEN, {"error": "forbidden"})
                return None
            return self.path[len(prefix) :].split("?", 1)[0]

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return
            if route == "":
                self._send(HTTPStatus.OK, page(), "text/html; charset=utf-8")
            elif route == "api/segments":
                self._json(HTTPStatus.OK, server.listing())
            elif route.startswith("audio/") and route.endswith(".wav"):
                try:
                    seg = server.workspace.segment(route[len("audio/") : -len(".wav")])
                except KeyError:
                    self._json(HTTPStatus.NOT_FOUND, {"error": "no such segment"})
                    return
                self._send(HTTPStatus.OK, (server.workspace.path / seg.audio_name()).read_bytes(), "audio/wav")
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {route}"})

        def do_POST(self) -> None:
            route = self._route()
            if route is None:
                return
            if route != "api/decision":
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such action: {route}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "bad body length"})
                return
            try:
                body = json.loads(self.rfile.read(length))
                seg = server.decide(body if isinstance(body, dict) else {})
            except KeyError:
                self._json(HTTPStatus.NOT_FOUND, {"error": "no such segment"})
            except (ValueError, TypeError) as exc:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            else:
                self._json(HTTPStatus.OK, asdict(seg))

    return Handler
