"""The control API's backend for the running daemon: its loaded voices, loop and persona.

``POST /say`` with ``play`` speaks through the voice loop (as a reply of its own, so
it waits for the robot to finish what it is saying); without it the daemon's loaded
voice renders a WAV file and the loop is not touched.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from companion.control.backend import ApiError, Synthesized
from companion.control.server import ControlServer
from companion.control.speech import render
from companion.errors import UserError
from companion.persona import Persona, load_persona
from companion.script import prepare

if TYPE_CHECKING:
    from companion.daemon import Daemon

_log = logging.getLogger(__name__)


def start_control_api(daemon: Daemon) -> ControlServer | None:
    """Serve ``daemon``'s control API when ``control.enabled``; the caller stops it (before the daemon).

    A port or socket already in use is logged and the daemon runs on without the API
    (``companion say`` then works cold), rather than keeping the robot from talking.
    """
    if not daemon.config.control.enabled:
        return None
    server = ControlServer(DaemonBackend(daemon), daemon.config.control)
    try:
        server.start()
    except UserError as exc:
        _log.error("%s; running without the control API", exc)
        return None
    return server


def stage_backends(daemon: Daemon) -> dict[str, object]:
    """Each stage's backend ('local', or a remote with its health and fallback)."""
    from companion.remote.health import stage_status

    models = getattr(daemon, "models", None)
    if models is None:
        return {}
    return {
        "stt": stage_status(models.stt),
        "llm": stage_status(models.chat),
        "tts": stage_status(daemon.voice_for(daemon.persona)),
    }


class DaemonBackend:
    kind = "daemon"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._lock = threading.Lock()  # one API synthesis at a time (the loop has its own thread)
        self.last_request: dict[str, object] = {}

    def _persona(self, name: str | None) -> Persona:
        d = self.daemon
        if name is None or name == d.persona_key:
            return d.persona
        return load_persona(name, d.config.personas_dir)

    def health(self) -> dict[str, object]:
        d = self.daemon
        return {"ok": True, "kind": self.kind, "persona": d.persona.name, "ready": d.status.ready_at is not None}

    def status(self) -> dict[str, object]:
        d = self.daemon
        loop = d.loop
        return {
            "kind": self.kind,
            "state": loop.state.value if loop is not None else "starting",
            "persona": d.persona.name,
            "persona_key": d.persona_key,
            "uptime_s": round(d.clock() - d.status.started_at, 3),
            "ready": d.status.ready_at is not None,
            "turns": d.status.turns,
            "last_turn": d.status.last_turn,
            "last_request": self.last_request,
            "echo": d.echo_status(),
            "stages": stage_backends(d),
        }

    def _check_ready(self) -> None:
        d = self.daemon
        if d.loop is None or d.status.ready_at is None:
            raise ApiError(503, "the daemon is still starting; try again in a few seconds")
        if not d.loop.running:
            raise ApiError(503, "the daemon's voice loop has stopped")

    def synthesize(self, text: str, persona: str | None, speed: float | None, raw: bool) -> Synthesized:
        self._check_ready()
        who = self._persona(persona)
        with self._lock:
            t = time.perf_counter()
            out = render(who, self.daemon.voice_for(who), text, speed=speed, raw=raw)
            took = (time.perf_counter() - t) * 1000.0
        self.last_request = {"spoken": out.spoken, "persona": who.name, "timings_ms": {"synthesize": round(took, 1)}}
        return out

    def play(self, text: str, persona: str | None, speed: float | None, raw: bool) -> dict[str, object]:
        self._check_ready()
        d = self.daemon
        loop = d.loop
        assert loop is not None
        if persona is not None and persona != d.persona_key:
            raise ApiError(
                409,
                f"the robot is speaking as {d.persona.name}: switch with 'companion persona use {persona}', "
                "or write a file with -o",
            )
        script = prepare(d.persona, text, raw=raw)
        if not script.written:
            raise ApiError(400, "nothing to say: the text has no words")
        record = loop.say(text, raw=raw, speed=speed)
        return {
            "queued": True,
            "turn": record.turn,
            "spoken": record.spoken,
            "persona": record.persona,
            "changed": script.changed,
        }

    def set_persona(self, name: str) -> dict[str, object]:
        persona = self.daemon.use_persona(name)
        return {"persona": persona.name, "name": name}
