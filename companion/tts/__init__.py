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

ENGINES = ("piper", "xtts")


def build_synthesizer(tts: TtsSettings, voice: VoiceSettings, cache_dir: Path) -> Synthesizer:
    """The synthesizer for a persona's voice, with its voice match and effects applied."""
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
