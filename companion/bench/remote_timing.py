"""Timings for ``companion bench --compare-remote`` beside the loop runs: each stage alone, and the fallback.

:func:`measure_stages` asks the embedded model and the loopback server in turn
(A/B/A/B), so both see the same machine load. :func:`measure_fallback` times a request
with each server off (connection refused) and hung (accepts, never answers) until the
local model gave its first result.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from companion.bench.report import stats
from companion.config import Config


def _hung_port() -> tuple[socket.socket, int]:
    """A socket that listens (the kernel completes connections) but never answers."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    return sock, int(sock.getsockname()[1])


def _closed_port() -> int:
    sock = socket.create_server(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@dataclass
class Locals:
    """The embedded models, loaded once for these measurements."""

    stt: Any
    chat: Any
    voice: Any
    prompt: Any

    @classmethod
    def load(cls, config: Config, persona_name: str | None) -> Locals:
        from companion.app import build_tts, load_persona_for, persona_prompt
        from companion.llm import LlamaChat
        from companion.stt import FasterWhisperSTT

        persona = load_persona_for(config, persona_name)
        stt = FasterWhisperSTT(config.stt)
        stt.warm()
        prompt = persona_prompt(persona)
        chat = LlamaChat(config.llm, prompt)
        chat.warm()
        return cls(stt, chat, build_tts(config, persona), prompt)


def _audio(fixtures_dir: Path, name: str) -> Any:
    import numpy as np

    from companion.audio.io import load_for_stt

    return load_for_stt(fixtures_dir / name).astype(np.float32) / 32768.0


def measure_stages(
    local: Locals, stt_uri: str, llm_url: str, tts_uri: str, fixtures_dir: Path, runs: int = 8
) -> dict[str, dict[str, object]]:
    """Per stage: first-result ms of the embedded model and of the server, asked in turn."""
    from companion.remote.openai_chat import OpenAIChat
    from companion.remote.wyoming_stt import WyomingSTT
    from companion.tts.wyoming import WyomingSynthesizer

    remote_settings = replace(
        local.chat.settings, engine="openai", url=llm_url, remote_model="smollm2", deadline_s=60.0
    )
    remote_chat = OpenAIChat(remote_settings, local.prompt)
    remote: dict[str, Any] = {
        "stt": WyomingSTT(stt_uri, deadline_s=60.0),
        "llm": remote_chat,
        "tts": WyomingSynthesizer(tts_uri, sample_rate=local.voice.sample_rate, deadline_s=60.0),
    }
    embedded = {"stt": local.stt, "llm": local.chat, "tts": local.voice}
    audio = _audio(fixtures_dir, "utt_01.wav")
    out: dict[str, dict[str, object]] = {}
    for stage in ("stt", "llm", "tts"):
        times: dict[str, list[float]] = {"embedded": [], "remote": []}
        _time_first(stage, remote[stage], audio)  # a first request warms the server's caches
        for _ in range(runs):
            for kind, target in (("embedded", embedded[stage]), ("remote", remote[stage])):
                times[kind].append(_time_first(stage, target, audio))
                local.chat.reset()
                remote_chat.reset()
        out[stage] = {kind: stats(values) for kind, values in times.items()}
    return out


def measure_fallback(config: Config, local: Locals, fixtures_dir: Path, runs: int = 3) -> dict[str, dict[str, object]]:
    """Per stage and fault: ms from the request until the local model's first result (median of ``runs``)."""
    from companion.remote.fallback import FallbackChat, FallbackSTT, FallbackSynthesizer
    from companion.remote.openai_chat import OpenAIChat
    from companion.remote.wyoming_stt import WyomingSTT
    from companion.tts.wyoming import WyomingSynthesizer

    stt_local, chat_local, voice_local = local.stt, local.chat, local.voice
    audio = _audio(fixtures_dir, "utt_01.wav")
    hung, hung_port = _hung_port()
    out: dict[str, dict[str, object]] = {}
    try:
        for fault, port in (("off", _closed_port()), ("hung", hung_port)):
            tcp, http = f"tcp://127.0.0.1:{port}", f"http://127.0.0.1:{port}/v1"
            s, ll, t = config.stt, config.llm, config.tts
            stt = FallbackSTT(
                WyomingSTT(tcp, connect_timeout_s=s.connect_timeout_s, deadline_s=s.deadline_s), stt_local
            )
            llm_settings = replace(ll, engine="openai", url=http)
            memory = chat_local.chat_memory
            chat = FallbackChat(OpenAIChat(llm_settings, local.prompt, memory=memory), chat_local)
            remote_voice = WyomingSynthesizer(
                tcp, sample_rate=voice_local.sample_rate, connect_timeout_s=t.connect_timeout_s, deadline_s=t.deadline_s
            )
            voice = FallbackSynthesizer(remote_voice, voice_local)
            wrappers: dict[str, Any] = {"stt": stt, "llm": chat, "tts": voice}
            for stage, wrapper in wrappers.items():
                times = []
                for _ in range(runs):
                    wrapper.health.retry_at = 0.0  # every run asks the remote again (no back-off)
                    times.append(_time_first(stage, wrapper, audio))
                    chat_local.reset()
                out.setdefault(stage, {})[fault] = stats(times)
        for stage, local in {"stt": stt_local, "llm": chat_local, "tts": voice_local}.items():
            times = []
            for _ in range(runs):
                times.append(_time_first(stage, local, audio))
                chat_local.reset()
            out[stage]["local only"] = stats(times)
    finally:
        hung.close()
    return out


def _time_first(stage: str, target: Any, audio: Any) -> float:
    """Milliseconds until ``target`` gives its first result: a transcript, a reply piece, audio."""
    start = time.perf_counter()
    if stage == "stt":
        target.transcribe(audio)
    else:
        stream = target.reply("Hello, who are you?") if stage == "llm" else target.synthesize("Hello there.")
        next(stream, None)
        stream.close()
    return (time.perf_counter() - start) * 1000.0
