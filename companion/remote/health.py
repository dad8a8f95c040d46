"""How a remote backend is doing: up, down (and until when we leave it alone), logged once per outage."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from companion.messages import PersonaPrompt
from companion.stages import Clock

if TYPE_CHECKING:
    from companion.config import Config

_log = logging.getLogger(__name__)

_NO_PROMPT = PersonaPrompt("")
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0


class RemoteError(Exception):
    """A remote backend failed (no connection, no answer in time, garbage); ``str()`` is one line."""


class RemoteHealth:
    """Per-stage remote state with exponential back-off (injected clock, thread-safe).

    After a failure the remote is skipped for 1 s, then 2, 4 ... up to 30 s; the first
    turn after that tries it again. Each outage is logged once when it starts and once
    when the remote answers again.
    """

    def __init__(self, stage: str, address: str, *, clock: Clock = time.monotonic) -> None:
        self.stage = stage
        self.address = address
        self.clock = clock
        self._lock = threading.Lock()
        self.state = "unknown"
        """'unknown' (not tried yet), 'ok' or 'down'."""
        self.last_error = ""
        self.failures = 0
        """Failures in a row (0 while it works)."""
        self.fallbacks = 0
        """Turns (or sentences) served by the local model because of the remote."""
        self.retry_at = 0.0
        self.last_ok_ms: float | None = None

    def should_try(self) -> bool:
        with self._lock:
            return self.state != "down" or self.clock() >= self.retry_at

    def ok(self, took_ms: float | None = None) -> None:
        with self._lock:
            if self.state == "down":
                _log.warning("%s: remote %s answers again; using it", self.stage, self.address)
            self.state, self.failures, self.last_error = "ok", 0, ""
            if took_ms is not None:
                self.last_ok_ms = took_ms

    def failed(self, error: BaseException | str) -> None:
        with self._lock:
            message = " ".join(str(error).split()) or type(error).__name__
            self.failures += 1
            delay = min(BACKOFF_START_S * 2 ** (self.failures - 1), BACKOFF_MAX_S)
            self.retry_at = self.clock() + delay
            if self.state != "down":
                _log.warning(
                    "%s: remote %s failed (%s); using the local model, retrying the remote with back-off",
                    self.stage,
                    self.address,
                    message,
                )
            else:
                _log.debug(
                    "%s: remote %s still down (%s); next try in %.0f s", self.stage, self.address, message, delay
                )
            self.state, self.last_error = "down", message

    def used_fallback(self) -> None:
        with self._lock:
            self.fallbacks += 1

    def as_json(self) -> dict[str, object]:
        with self._lock:
            out: dict[str, object] = {"remote": self.address, "health": self.state, "fallback_turns": self.fallbacks}
            if self.state == "down":
                out["error"] = self.last_error
                out["retry_in_s"] = round(max(self.retry_at - self.clock(), 0.0), 1)
            if self.last_ok_ms is not None:
                out["last_ms"] = round(self.last_ok_ms, 1)
            return out


def stage_status(stage: object) -> dict[str, object]:
    """``/status`` and ``doctor``: which backend a stage runs on and, for a remote, its health.

    Follows ``inner`` wrappers (user memory, voice shaping, serialisation) to the backend.
    """
    seen = 0
    while stage is not None and seen < 8:
        describe = getattr(stage, "backend_status", None)
        if callable(describe):
            out: dict[str, object] = describe()
            return out
        stage = getattr(stage, "inner", None) or getattr(stage, "chat", None)
        seen += 1
    return {"backend": "local", "health": "ok"}


def probe_remotes(config: Config) -> list[tuple[str, str, bool, str]]:
    """(stage, address, ok, detail) for each stage set to a remote: asks each server once (``doctor``)."""
    out: list[tuple[str, str, bool, str]] = []
    for stage, engine, address in (
        ("stt", config.stt.engine, config.stt.uri),
        ("llm", config.llm.engine, config.llm.url),
        ("tts", config.tts.engine, config.tts.uri),
    ):
        if engine not in ("wyoming", "openai"):
            continue
        if not address:
            out.append((stage, "", False, f"{stage}.engine is {engine} but no server address is set"))
            continue
        t = time.perf_counter()
        try:
            if engine == "openai":
                from companion.remote.openai_chat import OpenAIChat

                OpenAIChat(config.llm, _NO_PROMPT).probe()
                what = "answers GET /models"
            else:
                from companion.remote.wyoming_io import describe

                timeouts = config.stt if stage == "stt" else config.tts
                info = describe(address, connect_timeout=timeouts.connect_timeout_s, timeout=timeouts.deadline_s)
                programs = info.asr if stage == "stt" else info.tts
                if not programs:
                    raise RemoteError(f"{address}: a Wyoming server, but it offers no {stage}")
                what = f"Wyoming {programs[0].name}"
        except Exception as exc:
            out.append((stage, address, False, " ".join(str(exc).split())))
        else:
            out.append((stage, address, True, f"{what} in {(time.perf_counter() - t) * 1000:.0f} ms"))
    return out
