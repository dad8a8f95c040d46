"""Optional vocal isolation with demucs (htdemucs), used only when demucs and its weights are installed.

demucs fetches its weights on first use, which cannot work offline; so the studio only
uses it when the checkpoint is already in torch's hub cache, and otherwise says so in one
line and carries on with the original mix.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from companion.messages import Float32Array
from companion.voice.audio import resample

_log = logging.getLogger(__name__)

HTDEMUCS_SIG = "955717e8"
"""Signature of the htdemucs checkpoint (its file name starts with it)."""

Isolator = Callable[[Float32Array, int], Float32Array]


def _checkpoint() -> Path | None:
    import torch

    found = sorted((Path(torch.hub.get_dir()) / "checkpoints").glob(f"{HTDEMUCS_SIG}*.th"))
    return found[0] if found else None


def find_isolator() -> tuple[Isolator | None, str]:
    """(isolator, message): the isolator is None when demucs or its weights are missing."""
    if importlib.util.find_spec("demucs") is None:
        return None, "vocal isolation skipped: demucs is not installed (pip install demucs)"
    if _checkpoint() is None:
        return None, "vocal isolation skipped: the htdemucs weights are not in torch's hub cache"

    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    model = get_model("htdemucs")
    model.eval()
    vocals = model.sources.index("vocals")

    def isolate(audio: Float32Array, rate: int) -> Float32Array:
        import torch

        x = resample(audio, rate, model.samplerate)
        wav = torch.from_numpy(np.stack([x, x]))[None]
        with torch.no_grad():
            out = apply_model(model, wav, device="cpu", split=True, overlap=0.25, progress=False)
        voice = out[0, vocals].mean(dim=0).numpy().astype(np.float32)
        return resample(voice, model.samplerate, rate)[: audio.size]

    return isolate, "vocal isolation: demucs htdemucs"
