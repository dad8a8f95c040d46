"""The backend of ``companion serve``: the persona's voice and nothing else (no mic, STT or LLM).

Voices are loaded once per distinct persona voice and kept. ``play`` speaks on the
machine's speaker from a player thread; requests return as soon as it is queued.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from companion.app import build_tts
from companion.config import Config
from companion.control.backend import ApiError, Synthesized
from companion.control.speech import SerializedSynthesizer, play, render
from companion.persona import Persona, load_persona
from companion.script import prepare
from companion.stages import AudioSink, Synthesizer
from companion.tts.cache import VoiceCache

_log = logging.getLogger(__name__)

SinkFactory = Callable[[], AudioSink]


def speaker_factory(config: Config) -> SinkFactory:
    """Opens the configured speaker; raises ``NoAudioDeviceError`` on a machine without one."""

    def open_speaker() -> AudioSink:
        from companion.audio.devices import resolve_device
        from companion.audio.sinks import SpeakerSink

        audio = config.audio
        resolve_device(audio.output_device, "output")
        return SpeakerSink(audio.output_device, rate=audio.output_rate, latency=audio.output_latency)

    return open_speaker


@dataclass(frozen=True)
class _PlayJob:
    turn: int
    synth: Synthesizer
    sentences: tuple[str, ...]
    speed: float | None


class TtsBackend:
    """Serves one persona's voice (switchable), loaded at construction."""

    kind = "serve"

    def __init__(
        self,
        config: Config,
        persona_key: str,
        *,
        sink_factory: SinkFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self.started_at = clock()
        self._lock = threading.Lock()
        self.voices = VoiceCache(lambda p: SerializedSynthesizer(build_tts(self.config, p), self._lock))
        self.persona_key = persona_key
        self.persona = load_persona(persona_key, config.personas_dir)
        for _ in self.voice_for(self.persona).synthesize("Hello."):  # warm: the first sentence is slower
            pass
        self.ready_at = clock()
        self.turns = 0
        self._pending = 0  # play jobs queued or playing
        self._state_lock = threading.Lock()
        self.last_turn: dict[str, object] = {}
        self._sink_factory = sink_factory or speaker_factory(config)
        self._sink: AudioSink | None = None
        self._jobs: queue.Queue[_PlayJob | None] = queue.Queue()
        self._player: threading.Thread | None = None
        _log.info("voice of %s ready in %.2f s", self.persona.name, self.ready_at - self.started_at)

    # ---- voices -------------------------------------------------------------------------

    def voice_for(self, persona: Persona) -> Synthesizer:
        return self.voices.get(persona)

    def _persona(self, name: str | None) -> Persona:
        if name is None or name == self.persona_key:
            return self.persona
        return load_persona(name, self.config.personas_dir)

    # ---- Backend ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return "speaking" if self._pending else "idle"

    def health(self) -> dict[str, object]:
        return {"ok": True, "kind": self.kind, "persona": self.persona.name}

    def status(self) -> dict[str, object]:
        now = self.clock()
        return {
            "kind": self.kind,
            "state": self.state,
            "persona": self.persona.name,
            "persona_key": self.persona_key,
            "uptime_s": round(now - self.started_at, 3),
            "ready": True,
            "turns": self.turns,
            "last_turn": self.last_turn,
        }

    def synthesize(self, text: str, persona: str | None, speed: float | None, raw: bool) -> Synthesized:
        who = self._persona(persona)
        t = time.perf_counter()
        out = render(who, self.voice_for(who), text, speed=speed, raw=raw)
        self._record(out.spoken, who, {"synthesize": (time.perf_counter() - t) * 1000.0})
        return out

    def play(self, text: str, persona: str | None, speed: float | None, raw: bool) -> dict[str, object]:
        who = self._persona(persona)
        script = prepare(who, text, raw=raw)
        if not script.written:
            raise ApiError(400, "nothing to say: the text has no words")
        synth = self.voice_for(who)
        with self._state_lock:
            if self._sink is None:
                self._sink = self._sink_factory()  # no speaker: NoAudioDeviceError -> 503
            if self._player is None:
                self._player = threading.Thread(target=self._play_loop, name="companion-serve-play", daemon=True)
                self._player.start()
            self._pending += 1
        turn = self._record(script.spoken_text, who, {})
        self._jobs.put(_PlayJob(turn, synth, script.spoken, speed))
        return {
            "queued": True,
            "turn": turn,
            "spoken": script.spoken_text,
            "persona": who.name,
            "changed": script.changed,
        }

    def set_persona(self, name: str) -> dict[str, object]:
        persona = load_persona(name, self.config.personas_dir)
        self.voice_for(persona)
        self.persona, self.persona_key = persona, name
        _log.info("persona is now %s", persona.name)
        return {"persona": persona.name, "name": name}

    # ---- playing ------------------------------------------------------------------------

    def _record(self, spoken: str, persona: Persona, timings: dict[str, float]) -> int:
        with self._state_lock:
            self.turns += 1
            self.last_turn = {
                "turn": self.turns,
                "spoken": spoken,
                "persona": persona.name,
                "timings_ms": {k: round(v, 1) for k, v in timings.items()},
            }
            return self.turns

    def _play_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                break
            assert self._sink is not None
            t = time.perf_counter()
            try:
                seconds = play(job.synth, job.sentences, self._sink, speed=job.speed, turn=job.turn)
                _log.debug("played %.1f s of audio in %.1f s", seconds, time.perf_counter() - t)
            except Exception:
                _log.exception("playing turn %d failed", job.turn)
            finally:
                with self._state_lock:
                    self._pending -= 1

    def close(self) -> None:
        """Stop the player (after what is queued) and close the speaker."""
        if self._player is not None:
            self._jobs.put(None)
            self._player.join(timeout=30)
            self._player = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None
