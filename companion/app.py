"""Building the voice loop's stages from settings: which models, which persona."""

from __future__ import annotations

import logging
import threading
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
    from companion.audio.echo import EchoReference
    from companion.audio.echo_path import EchoPath
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
    """Load STT, LLM and TTS in parallel, the LLM once the STT weights are in (see below)."""
    from companion.remote.build import build_chat, build_stt

    times: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            t = time.perf_counter()
            out = fn()
            times[name] = (time.perf_counter() - t) * 1000.0
            return out

        return run

    stt_loaded = threading.Event()

    def stt() -> SpeechToText:
        try:
            model = build_stt(config)  # the local model, or a remote with it as fallback
        finally:
            stt_loaded.set()
        if warm and hasattr(model, "warm"):
            model.warm()
        return model

    def chat() -> Chat:
        from companion.memory.build import ground

        # grounded in the persona's facts and the memory of the user (issue 14); ground() warms it
        return ground(config, persona, build_chat(config, persona_prompt(persona)), warm=warm)

    def tts() -> Synthesizer:
        synth = build_tts(config, persona)
        if warm:
            for _ in synth.synthesize("Hello."):
                pass
        return synth

    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="companion-load") as pool:
        f_stt, f_tts = pool.submit(timed("stt", stt)), pool.submit(timed("tts", tts))
        # Whisper needs ~100 MB more while it loads than it keeps: not on top of the LLM's
        # ~130 MB (the LLM's load is the shortest: ~0.2 s with its prefix cache)
        stt_loaded.wait()
        f_chat = pool.submit(timed("llm", chat))
        models = Models(stt=f_stt.result(), chat=f_chat.result(), tts=f_tts.result())
    models.load_ms = times
    release_freed_memory()
    _log.info(
        "models ready: stt %.0f ms, llm %.0f ms, tts %.0f ms",
        times.get("stt", 0),
        times.get("llm", 0),
        times.get("tts", 0),
    )
    return models


def release_freed_memory() -> None:
    """Give the pages that loading and warming freed back to the OS (glibc's ``malloc_trim``).

    glibc keeps freed memory for reuse, per thread arena; after the parallel loads that
    was ~15 MB of RSS. A no-op where the C library is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def build_loop(
    config: Config,
    persona: Persona,
    models: Models,
    *,
    source: AudioSource,
    sink: AudioSink,
    bus: EventBus | None = None,
    clock: Clock = time.monotonic,
    echo_reference: EchoReference | None = None,
    greet: bool = False,
) -> VoiceLoop:
    """The loop; ``echo_reference`` is what the speaker plays (for echo cancellation on a live mic)."""
    from companion.loop import LoopOptions, VoiceLoop

    echo = open_echo_path(config, echo_reference) if source.live else None
    barge_in = config.listen.barge_in
    if barge_in is None:
        barge_in = config.audio.echo_cancel == "external" or echo is not None
    from companion.turnend import make_policy

    hinted = config.vad.end_of_turn != "silence"  # the loop answers each draft with a hold
    return VoiceLoop(
        source=source,
        sink=sink,
        detector=TurnDetector(config.vad, clock=clock, hinted=hinted),
        stt=models.stt,
        chat=models.chat,
        tts=models.tts,
        persona=persona,
        listen=config.listen,
        options=LoopOptions(
            max_sentences=config.llm.max_sentences,
            barge_in=barge_in,
            greet=greet,
            resume_turns=config.listen.resume,
        ),
        bus=bus,
        clock=clock,
        echo=echo,
        end_of_turn=make_policy(config.vad, _end_of_turn_probability(models.chat)) if hinted else None,
    )


def _end_of_turn_probability(chat: object) -> Callable[[str], float] | None:
    """The loaded LLM's end-of-turn scorer, through wrappers (memory, fallback) that hold it as ``inner``."""
    for _ in range(4):
        probability = getattr(chat, "end_of_turn_probability", None)
        if probability is not None:
            return probability
        chat = getattr(chat, "inner", None)
        if chat is None:
            break
    return None


def open_echo_path(config: Config, reference: EchoReference | None) -> EchoPath | None:
    """Speex echo cancellation on the mic, fed what the speaker plays; None (logged) if it cannot run."""
    if config.audio.echo_cancel != "speex" or reference is None:
        return None
    from companion.audio.echo import SpeexEchoCanceller
    from companion.audio.echo_path import EchoPath
    from companion.errors import UserError

    try:
        canceller = SpeexEchoCanceller(reference.rate, tail_ms=config.audio.echo_filter_ms)
    except UserError as exc:
        _log.warning("%s; the robot will not listen while it speaks", exc)
        return None
    return EchoPath(canceller, reference)


def load_persona_for(config: Config, name: str | None = None) -> Persona:
    return load_persona(name or config.persona, config.personas_dir)
