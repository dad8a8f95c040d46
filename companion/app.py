"""Building the voice loop's stages from settings: which models, which persona."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from companion.config import Config
from companion.messages import PersonaPrompt
from companion.persona import Persona, load_persona
from companion.stages import AudioSink, AudioSource, Chat, Clock, EventBus, SpeechToText, Synthesizer
from companion.vad import TurnDetector

if TYPE_CHECKING:
    from companion.loop import VoiceLoop

T = TypeVar("T")

_log = logging.getLogger(__name__)


def persona_prompt(persona: Persona) -> PersonaPrompt:
    return PersonaPrompt(persona.system_prompt, tuple((e.user, e.assistant) for e in persona.examples))


def cache_dir(config: Config) -> Path:
    return config.tts.cache_dir or config.resolved_state_dir() / "cache"


def build_tts(config: Config, persona: Persona) -> Synthesizer:
    from companion.tts import build_synthesizer

    return build_synthesizer(config.tts, persona.voice, cache_dir(config))


@dataclass
class Models:
    """The loaded models; loaded once, kept across persona swaps."""

    stt: SpeechToText
    chat: Chat
    tts: Synthesizer
    load_ms: dict[str, float] = field(default_factory=dict)


def load_models(config: Config, persona: Persona, *, warm: bool = True) -> Models:
    """Load STT, LLM and TTS (in parallel: each mostly waits on disk and native init)."""
    from companion.llm import LlamaChat
    from companion.stt import FasterWhisperSTT

    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            t = time.perf_counter()
            out = fn()
            times[name] = (time.perf_counter() - t) * 1000.0
            return out

        return run

    def stt() -> FasterWhisperSTT:
        model = FasterWhisperSTT(config.stt)
        if warm:
            model.warm()
        return model

    def chat() -> LlamaChat:
        model = LlamaChat(config.llm, persona_prompt(persona))
        if warm:
            model.warm()
        return model

    def tts() -> Synthesizer:
        synth = build_tts(config, persona)
        if warm:
            for _ in synth.synthesize("Hello."):
                pass
        return synth

    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="companion-load") as pool:
        f_stt, f_chat, f_tts = (
            pool.submit(timed("stt", stt)),
            pool.submit(timed("llm", chat)),
            pool.submit(timed("tts", tts)),
        )
        models = Models(stt=f_stt.result(), chat=f_chat.result(), tts=f_tts.result())
    models.load_ms = times
    _log.info(
        "models ready: stt %.0f ms, llm %.0f ms, tts %.0f ms",
        times.get("stt", 0),
        times.get("llm", 0),
        times.get("tts", 0),
    )
    return models


def build_loop(
    config: Config,
    persona: Persona,
    models: Models,
    *,
    source: AudioSource,
    sink: AudioSink,
    bus: EventBus | None = None,
    clock: Clock = time.monotonic,
) -> VoiceLoop:
    from companion.loop import LoopOptions, VoiceLoop

    return VoiceLoop(
        source=source,
        sink=sink,
        detector=TurnDetector(config.vad, clock=clock),
        stt=models.stt,
        chat=models.chat,
        tts=models.tts,
        persona=persona,
        listen=config.listen,
        options=LoopOptions(max_sentences=config.llm.max_sentences),
        bus=bus,
        clock=clock,
    )


def load_persona_for(config: Config, name: str | None = None) -> Persona:
    return load_persona(name or config.persona, config.personas_dir)
