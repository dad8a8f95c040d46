"""A persona's voice settings (the ``voice:`` section of a persona file).

Example (Rocky's translator voice on a small board)::

    voice:
      engine: piper
      match: voices/rocky.wav        # move joe toward this speaker (pitch, formants, timbre)
      match_strength: 0.8
      effects:
        - bandpass: {low_hz: 250, high_hz: 4000}
        - chorus: {rate_hz: 0.6, depth: 0.15, mix: 0.25}
        - bitcrush: {bit_depth: 12}

and with XTTS v2 cloning from the character's clips::

    voice:
      engine: xtts
      reference: [voices/rocky-1.wav, voices/rocky-2.wav]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from companion.settings import between, positive, setting
from companion.voice.effects import Effect


def _language(value: str) -> str | None:
    if not value or not value.replace("-", "").isalpha():
        return f"expected a language code such as 'en' or 'zh-cn', got {value!r}"
    return None


@dataclass(frozen=True)
class VoiceSettings:
    engine: str | None = setting(None, doc="piper, xtts or wyoming; null = config's tts.engine")
    piper_voice: str | None = setting(None, doc="Piper .onnx path; null = config's tts.voice")
    wyoming_voice: str | None = setting(None, doc="tts.engine wyoming: the server's voice name; null = its default")
    reference: tuple[Path, ...] = setting((), doc="reference clips of the character (cloning)")
    speed: float = setting(1.0, check=between(0.5, 2.0), doc="speaking rate")
    pitch_semitones: float = setting(0.0, check=between(-12, 12), doc="pitch shift")
    volume: float = setting(1.0, check=positive, doc="output gain")
    language: str = setting("en", check=_language, doc="xtts: language the persona speaks")
    match: Path | None = setting(None, doc="reference WAV the voice moves toward (pitch, formants, timbre)")
    match_strength: float = setting(1.0, check=between(0, 1), doc="0 = own voice, 1 = fully matched")
    effects: tuple[Effect, ...] = setting((), doc="effects chain for character timbre, in order")

    def resolved(self, base: Path) -> VoiceSettings:
        """These settings with relative clip paths taken relative to ``base`` (the persona's directory)."""
        from dataclasses import replace

        def fix(p: Path) -> Path:
            return p if p.is_absolute() else base / p

        return replace(
            self,
            reference=tuple(fix(p) for p in self.reference),
            match=None if self.match is None else fix(self.match),
        )
