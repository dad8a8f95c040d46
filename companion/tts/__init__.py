"""Text-to-speech engines behind the :class:`companion.stages.Synthesizer` protocol.

``tts.engine`` in config.yaml (or a persona's ``voice.engine``) picks the engine;
backends import their libraries lazily.
"""

from __future__ import annotations

from pathlib import Path

from companion.config import TtsSettings
from companion.errors import UserError
from companion.stages import Synthesizer
from companion.tts.voice import VoiceSettings

ENGINES = ("piper", "xtts", "wyoming")


def build_synthesizer(tts: TtsSettings, voice: VoiceSettings, cache_dir: Path) -> Synthesizer:
    """The synthesizer for a persona's voice, with its voice match and effects applied.

    ``tts.engine: wyoming`` (or a persona's ``voice.engine: wyoming``) speaks on the
    server at ``tts.uri`` in the persona's ``wyoming_voice``; the server's voice is used
    as it comes (a ``companion serve --wyoming`` has applied the persona's match and
    effects already). The persona's local voice is the fallback (``tts.fallback``).
    """
    if "wyoming" in (tts.engine, voice.engine):
        return _build_wyoming(tts, voice, cache_dir)
    return build_local_synthesizer(tts, voice, cache_dir)


def _build_wyoming(tts: TtsSettings, voice: VoiceSettings, cache_dir: Path) -> Synthesizer:
    from dataclasses import replace

    from companion.remote.fallback import FallbackSynthesizer
    from companion.remote.wyoming_io import parse_tcp_uri
    from companion.tts.wyoming import WyomingSynthesizer

    if not tts.uri:
        raise UserError("tts.engine is 'wyoming' but tts.uri is not set (tcp://HOST:PORT)")
    try:
        parse_tcp_uri(tts.uri, key="tts.uri")
    except ValueError as exc:
        raise UserError(str(exc)) from None
    local = None
    if tts.fallback:
        engine = voice.engine if voice.engine not in (None, "wyoming") else "piper"
        local = build_local_synthesizer(replace(tts, engine="piper"), replace(voice, engine=engine), cache_dir)
    remote = WyomingSynthesizer(
        tts.uri,
        voice=voice.wyoming_voice,
        sample_rate=local.sample_rate if local is not None else 22050,
        connect_timeout_s=tts.connect_timeout_s,
        deadline_s=tts.deadline_s,
    )
    synth = FallbackSynthesizer(remote, local)
    synth.probe()
    return synth


def build_local_synthesizer(tts: TtsSettings, voice: VoiceSettings, cache_dir: Path) -> Synthesizer:
    """The persona's voice on this machine (Piper or XTTS), shaped; never a remote."""
    engine = voice.engine or tts.engine
    synth: Synthesizer
    if engine == "piper":
        from companion.tts.piper import PiperSynthesizer

        synth = PiperSynthesizer(voice.piper_voice or tts.voice, threads=tts.threads, speed=voice.speed)
    elif engine == "xtts":
        from companion.tts.xtts import XttsSynthesizer

        synth = XttsSynthesizer.from_settings(tts, voice, cache_dir)
    else:
        raise UserError(f"unknown TTS engine '{engine}' (tts.engine: one of {', '.join(ENGINES)})")
    from companion.voice import wrap

    return wrap(synth, voice, cache_dir)
