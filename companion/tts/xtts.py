"""Coqui XTTS v2: zero-shot cloning of the character's voice from reference clips.

Optional (``pip install companion[xtts]``; see requirements-xtts.txt). The model lives in
``tts.xtts_model_dir`` (config.json, model.pth, vocab.json, optionally speakers_xtts.pth).
The conditioning latents and speaker embedding of the persona's clips are computed once
and cached under ``cache_dir/xtts``, keyed by the clips' content and the checkpoint, so
later starts skip that step. :meth:`XttsSynthesizer.synthesize` streams: it yields audio
every ``stream_chunk_size`` GPT tokens, before the sentence is finished.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from companion.config import TtsSettings
from companion.errors import ModelError, UserError
from companion.messages import Float32Array
from companion.tts.voice import VoiceSettings
from companion.voice import cache
from companion.voice.audio import load_at

_log = logging.getLogger(__name__)

MODEL_NAME = "tts_models/multilingual/multi-dataset/xtts_v2"
MODEL_FILES = ("config.json", "model.pth", "vocab.json")
MODEL_URL = "https://huggingface.co/coqui/XTTS-v2"
LATENTS_VERSION = "xtts-latents-v1"
COND_RATE = 22050
"""Sample rate XTTS computes its conditioning at."""


def _import_tts() -> tuple[Any, Any, Any]:
    try:
        import torch
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except ImportError as exc:
        raise ModelError(
            f"tts.engine xtts needs Coqui TTS: pip install 'companion[xtts]' "
            f"(or pip install -r requirements-xtts.txt) [{exc}]"
        ) from exc
    return torch, XttsConfig, Xtts


def missing_files(model_dir: Path) -> list[str]:
    return [name for name in MODEL_FILES if not (model_dir / name).is_file()]


def download_model() -> Path:
    """Fetch XTTS v2 once with Coqui's own model manager; returns its directory."""
    from TTS.utils.manage import ModelManager

    model_path, config_path, _ = ModelManager(progress_bar=False).download_model(MODEL_NAME)
    return Path(config_path).parent if config_path else Path(model_path)


def resolve_model_dir(configured: Path | None, download: Callable[[], Path] = download_model) -> Path:
    """The XTTS model directory: the configured one, or Coqui's download (once, if allowed)."""
    if configured is not None and not missing_files(configured):
        return configured
    where = configured or Path("~/.local/share/companion/xtts_v2")
    gap = ", ".join(missing_files(configured)) if configured is not None else ", ".join(MODEL_FILES)
    how = (
        f"XTTS v2 model not found ({gap} missing): put {', '.join(MODEL_FILES)} (and speakers_xtts.pth) "
        f"from {MODEL_URL} into {where} and set tts.xtts_model_dir to it"
    )
    if os.environ.get("COQUI_TOS_AGREED") != "1":
        raise ModelError(
            how + ", or set COQUI_TOS_AGREED=1 (accepting the Coqui Public Model License) with a network "
            "connection to let Coqui download it once"
        )
    _log.info("tts.xtts_model_dir has no model; downloading %s with Coqui's model manager", MODEL_NAME)
    try:
        model_dir = download()
    except Exception as exc:  # network, hub and disk errors all end here
        raise ModelError(f"{how} (the download failed: {exc})") from exc
    if missing_files(model_dir):
        raise ModelError(f"{how} (the download in {model_dir} is incomplete)")
    return model_dir


def load_model(model_dir: Path, threads: int) -> Any:
    """XTTS from ``model_dir`` through Coqui's own loader (``Xtts.load_checkpoint``)."""
    torch, xtts_config, xtts = _import_tts()
    torch.set_num_threads(threads)
    try:
        config = xtts_config()
        config.load_json(str(model_dir / "config.json"))
        model = xtts(config)
        model.load_checkpoint(config, checkpoint_dir=str(model_dir), eval=True, use_deepspeed=False)
    except Exception as exc:  # torch and coqpit raise many types; all mean "bad model files"
        raise ModelError(f"cannot load XTTS model from {model_dir}: {exc}") from exc
    model.eval()
    return model


def _latents_key(model_dir: Path, clips: Sequence[Path], params: Sequence[object]) -> str:
    import TTS

    return cache.key(
        [
            LATENTS_VERSION,
            str(getattr(TTS, "__version__", "?")),
            cache.file_digest(model_dir / "config.json"),
            cache.large_file_fingerprint(model_dir / "model.pth"),
            *map(str, params),
            *(cache.file_digest(clip) for clip in clips),
        ]
    )


def conditioning(model: Any, model_dir: Path, clips: Sequence[Path], cache_dir: Path) -> tuple[Any, Any]:
    """(GPT conditioning latents, speaker embedding) of ``clips``, cached on disk."""
    import torch

    if not clips:
        raise UserError("tts.engine xtts needs voice.reference: one or more clips of the character")
    for clip in clips:
        if not clip.is_file():
            raise UserError(f"voice.reference: clip {clip} not found")
    cfg = model.config
    max_ref, cond_len, chunk_len = int(cfg.max_ref_len), int(cfg.gpt_cond_len), int(cfg.gpt_cond_chunk_len)
    path = cache_dir / "xtts" / f"{_latents_key(model_dir, clips, (max_ref, cond_len, chunk_len))}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            _log.debug("XTTS voice latents from %s", path)
            return saved["gpt_cond_latent"], saved["speaker_embedding"]
        except Exception as exc:  # a corrupt cache entry is recomputed
            _log.warning("ignoring unreadable XTTS latents cache %s: %s", path, exc)
    audios = [torch.from_numpy(load_at(clip, COND_RATE)[: COND_RATE * max_ref]).unsqueeze(0) for clip in clips]
    with torch.inference_mode():
        embeddings = [model.get_speaker_embedding(audio, COND_RATE) for audio in audios]
        speaker_embedding = torch.stack(embeddings).mean(dim=0)
        gpt_cond_latent = model.get_gpt_cond_latents(
            torch.cat(audios, dim=-1), COND_RATE, length=cond_len, chunk_length=chunk_len
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"gpt_cond_latent": gpt_cond_latent, "speaker_embedding": speaker_embedding}, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _log.warning("cannot cache XTTS voice latents in %s: %s", path, exc)
    _log.info("computed XTTS voice latents from %d clip(s)", len(clips))
    return gpt_cond_latent, speaker_embedding


class XttsSynthesizer:
    """XTTS v2 conditioned on one persona's clips; streams audio while the GPT is still generating."""

    def __init__(
        self,
        model: Any,
        gpt_cond_latent: Any,
        speaker_embedding: Any,
        *,
        language: str = "en",
        speed: float = 1.0,
        stream_chunk_size: int = 20,
        name: str = "xtts_v2",
    ) -> None:
        self._model = model
        self._latent = gpt_cond_latent
        self._speaker = speaker_embedding
        self.language = language
        self.speed = speed
        self.stream_chunk_size = stream_chunk_size
        self.name = name
        self.sample_rate: int = int(model.config.audio.output_sample_rate)

    @classmethod
    def from_settings(
        cls, tts: TtsSettings, voice: VoiceSettings, cache_dir: Path, *, stream_chunk_size: int = 20
    ) -> XttsSynthesizer:
        model_dir = resolve_model_dir(tts.xtts_model_dir)
        model = load_model(model_dir, tts.threads)
        latent, speaker = conditioning(model, model_dir, voice.reference, cache_dir)
        _log.info(
            "loaded XTTS from %s (%d Hz, %d threads)", model_dir, model.config.audio.output_sample_rate, tts.threads
        )
        return cls(
            model,
            latent,
            speaker,
            language=voice.language,
            speed=voice.speed,
            stream_chunk_size=stream_chunk_size,
            name=f"xtts:{model_dir.name}",
        )

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        text = text.strip()
        if not text:
            return
        cfg = self._model.config
        # inference_stream runs each step under torch.inference_mode itself (a decorated generator)
        stream = self._model.inference_stream(
            text,
            self.language,
            self._latent,
            self._speaker,
            stream_chunk_size=self.stream_chunk_size,
            temperature=cfg.temperature,
            length_penalty=cfg.length_penalty,
            repetition_penalty=cfg.repetition_penalty,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            speed=self.speed if speed is None else speed,
            enable_text_splitting=False,
        )
        for chunk in stream:
            audio = np.asarray(chunk.detach().cpu().numpy(), dtype=np.float32).reshape(-1)
            if audio.size:
                yield audio
