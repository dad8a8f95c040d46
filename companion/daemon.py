"""The daemon: owns the voice loop and everything around it, start to stop.

Start-up loads the models once (in parallel), warms them, then starts the loop.
Persona swaps and config reloads replace what changed between turns, without
reloading the STT or LLM weights; a bad file is rejected and the old state kept.
Shutdown goes input first, output last.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from companion.app import build_loop, build_tts, load_models, persona_prompt
from companion.audio.sources import FileSource
from companion.body.core import Body, open_body
from companion.config import Config, LoadedConfig, load_config
from companion.convlog import ConversationLog
from companion.loop import VoiceLoop
from companion.messages import Event, State, StateChange, TurnFinished
from companion.persona import Persona, load_persona
from companion.sdnotify import Notifier
from companion.settings import ConfigError
from companion.stages import AudioSink, AudioSource, EventBus, Synthesizer
from companion.tts.cache import VoiceCache

if TYPE_CHECKING:
    from companion.audio.echo import EchoReference

_log = logging.getLogger(__name__)


@dataclass
class DaemonStatus:
    started_at: float
    ready_at: float | None = None
    last_turn: dict[str, object] = field(default_factory=dict)
    turns: int = 0


class Daemon:
    """One running companion: config, persona, models, loop."""

    def __init__(
        self,
        loaded: LoadedConfig,
        persona: Persona,
        *,
        source: AudioSource,
        sink: AudioSink,
        config_arg: Path | None = None,
        bus: EventBus | None = None,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
        persona_key: str | None = None,
        conversation_log: bool | None = None,
        pin_factory: object | None = None,
        echo_reference: EchoReference | None = None,
        greet: bool | None = None,
    ) -> None:
        self.loaded = loaded
        self.config: Config = loaded.config
        self.config_arg = config_arg
        self.persona = persona
        self.persona_key = persona_key or loaded.config.persona
        """The persona's file name (personas/KEY.yaml), for reloads."""
        self.source, self.sink = source, sink
        self.bus = bus or EventBus()
        self.clock = clock
        self.status = DaemonStatus(started_at=clock())
        self.loop: VoiceLoop | None = None
        self.echo_reference = echo_reference
        self.greet = source.live if greet is None else greet
        self.voices = VoiceCache(lambda p: build_tts(self.config, p))
        self._lock = threading.Lock()
        self._reload_lock = threading.RLock()
        self._reload_wanted = False
        self._reloader: threading.Thread | None = None
        self._stopping = threading.Event()
        self.notifier = notifier or Notifier()
        self._hung_reported: list[str] = []
        self.body: Body | None = None
        self.pin_factory = pin_factory
        self.convlog: ConversationLog | None = None
        if conversation_log if conversation_log is not None else source.live:
            self.convlog = ConversationLog(self.config.resolved_state_dir() / "conversation.jsonl")
            self.bus.subscribe(self.convlog)
        self.bus.subscribe(self._on_event)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> VoiceLoop:
        models = load_models(self.config, self.persona)
        self.models = models
        self.voices.put(self.persona, models.tts)
        warm = getattr(self.sink, "warm", None)
        if warm is not None and self.source.live:
            warm(models.tts.sample_rate)  # the speaker's stream starts now, not in the greeting
        self.body = open_body(self.config.gpio, self.pin_factory)
        sink = self.body.wrap_sink(self.sink) if self.body is not None else self.sink
        self.loop = build_loop(
            self.config,
            self.persona,
            models,
            source=self.source,
            sink=sink,
            bus=self.bus,
            clock=self.clock,
            echo_reference=self.echo_reference,
            greet=self.greet,
        )
        if self.body is not None:
            self.body.attach(self.bus, self.loop)
            self.body.set_colours(self.persona.leds)
        if isinstance(self.source, FileSource) and not self.source.realtime:
            self.source.gate = self.loop.wait_idle
        self.loop.start()
        self.status.ready_at = self.clock()
        self.notifier.ready(f"listening as {self.persona.name}")
        _log.info("ready as %s after %.2f s", self.persona.name, self.status.ready_at - self.status.started_at)
        return self.loop

    def wait(self) -> None:
        """Block until the loop ends (recording done) or :meth:`stop` is called.

        Meanwhile feed systemd's watchdog, but only while no stage is hung: a loop
        that is truly stuck stops the pings and systemd restarts the service.
        """
        assert self.loop is not None
        interval = min(self.notifier.watchdog_interval_s or 1.0, 1.0)
        try:
            while self.loop.running:
                self.loop.wait(timeout=interval)
                self.check_health()
        finally:
            self.close()

    def close(self) -> None:
        """After the loop has ended: eyes and amp off, the conversation log flushed."""
        if self.body is not None:
            self.body.close()
            self.body = None
        if self.convlog is not None:
            self.convlog.close()

    def check_health(self) -> bool:
        """Ping the watchdog if every stage is making progress; True if it was pinged."""
        assert self.loop is not None
        hung = self.loop.hung_stages()
        if hung:
            if hung != self._hung_reported:
                _log.error("stage thread(s) %s hung; no longer feeding the watchdog", ", ".join(hung))
                self._hung_reported = hung
            return False
        self._hung_reported = []
        self.notifier.watchdog()
        return True

    def stop(self, *, cut: bool = True) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        _log.info("stopping")
        self.notifier.stopping()
        if self.loop is not None:
            self.loop.stop(cut=cut)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop; SIGHUP reloads config and persona."""

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            _log.info("got %s", signal.Signals(signum).name)
            self.stop()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    def echo_status(self) -> dict[str, object]:
        """Echo cancellation and barge-in, for ``/status``: how much echo it removes and at what cost."""
        loop = self.loop
        echo = loop.echo if loop is not None else None
        out: dict[str, object] = {
            "mode": self.config.audio.echo_cancel,
            "barge_in": bool(loop is not None and loop.options.barge_in),
        }
        if echo is not None:
            stats = echo.stats
            out.update(
                erle_db=round(stats.erle_db, 1),
                cost_ms_per_10ms_frame=round(stats.cost_ms_per_frame, 3),
                trained=echo.trained,
                frames=stats.frames,
                gated_blocks=echo.gated_blocks,
            )
        return out

    # ---- persona and config ---------------------------------------------------------------

    def request_reload(self) -> None:
        """Reload soon, on one reload thread: a storm of SIGHUPs becomes one or two reloads."""
        with self._reload_lock:  # re-entrant: a signal may land while the main thread holds it
            self._reload_wanted = True
            if self._reloader is None:
                self._reloader = threading.Thread(target=self._reload_loop, name="companion-reload", daemon=True)
                self._reloader.start()

    @property
    def reloading(self) -> bool:
        """A reload is running or wanted."""
        return self._reloader is not None

    def _reload_loop(self) -> None:
        while True:
            with self._reload_lock:
                if not self._reload_wanted or self._stopping.is_set():
                    self._reloader = None
                    return
                self._reload_wanted = False
            self.reload()

    def voice_for(self, persona: Persona) -> Synthesizer:
        """The synthesizer for a persona's voice (see :class:`VoiceCache`)."""
        return self.voices.get(persona)

    def use_persona(self, name: str) -> Persona:
        """Swap to persona ``name`` between turns; a bad file raises and changes nothing."""
        with self._lock:
            t = time.perf_counter()
            persona = load_persona(name, self.config.personas_dir)
            self._apply_persona(persona)
            self.persona_key = name
            _log.info("persona %s ready in %.0f ms", name, (time.perf_counter() - t) * 1000)
            return persona

    def _apply_persona(self, persona: Persona) -> None:
        voice = self.voice_for(persona)
        self.persona = persona
        if self.body is not None:
            self.body.set_colours(persona.leds)
        if self.loop is not None:
            self.loop.set_persona(persona, voice, keep_memory=not self.config.clear_memory_on_persona_change)

    def reload(self) -> bool:
        """Re-read config and the active persona (SIGHUP). Bad files are rejected, old kept."""
        with self._lock:
            self.notifier.reloading()
            try:
                loaded = load_config(self.config_arg)
                persona = load_persona(self.persona_key, loaded.config.personas_dir)
            except ConfigError as exc:
                _log.error("reload rejected, keeping the running config and persona: %s", exc)
                self.notifier.ready(f"reload rejected: {exc}")
                return False
            except Exception as exc:
                _log.error("reload failed, keeping the running config and persona: %s", exc)
                self.notifier.ready(f"reload failed: {exc}")
                return False
            self.loaded, self.config = loaded, loaded.config
            self.voices.clear()
            self._apply_persona(persona)
            _log.info("reloaded %s and persona %s", loaded.path, persona.name)
            self.notifier.ready(f"reloaded; persona {persona.name}")
            return True

    # ---- events ---------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, TurnFinished):
            self.status.turns += 1
            self.status.last_turn = event.record.as_json()
        elif isinstance(event, StateChange):
            self.notifier.status(f"{event.state.value} as {event.persona}")
            if event.state == State.ERROR:
                _log.error("the loop is in the error state")


__all__ = ["Daemon", "DaemonStatus", "persona_prompt"]
