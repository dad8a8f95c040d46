"""The persona voices kept loaded: built once each, the least recently used dropped first."""

from __future__ import annotations

import collections
import gc
import threading
from collections.abc import Callable

from companion.persona import Persona
from companion.stages import Synthesizer

MAX_VOICES = 3
"""Voices kept (a Piper voice costs ~90 MB; 12 distinct voices once held +1 GB)."""


class VoiceCache:
    def __init__(self, build: Callable[[Persona], Synthesizer], size: int = MAX_VOICES) -> None:
        self._build = build
        self.size = max(1, size)
        self._voices: collections.OrderedDict[str, Synthesizer] = collections.OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(persona: Persona) -> str:
        return repr(persona.voice)

    def get(self, persona: Persona) -> Synthesizer:
        """``persona``'s synthesizer. A dropped voice lives on while someone still speaks with it."""
        key = self.key(persona)
        with self._lock:
            voice = self._voices.pop(key, None)
        if voice is None:
            voice = self._build(persona)  # outside the lock: loading a voice takes a while
        with self._lock:
            self._voices[key] = voice
            while len(self._voices) > self.size:
                self._voices.popitem(last=False)
        return voice

    def put(self, persona: Persona, voice: Synthesizer) -> None:
        with self._lock:
            self._voices[self.key(persona)] = voice

    def clear(self) -> None:
        """Forget every voice (after a config reload) and free them now."""
        with self._lock:
            self._voices.clear()
        gc.collect()

    def __len__(self) -> int:
        return len(self._voices)
