"""Text-to-speech on a Wyoming server (wyoming-piper, ``companion serve --wyoming``, ...).

Each sentence is one request. When the server's ``info`` says it streams, the
sentence goes as ``synthesize-start`` / ``synthesize-chunk`` / ``synthesize-stop`` and
audio is yielded as each ``audio-chunk`` arrives; otherwise as one ``synthesize``.
Audio in any integer width, channel count or rate is converted to mono float at
:attr:`WyomingSynthesizer.sample_rate`. Text is sent already in the persona's style,
marked so in the request ``context`` so that a companion server does not apply it twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from companion.messages import Float32Array
from companion.remote.health import RemoteError
from companion.remote.wyoming_io import WyomingConnection, describe, parse_tcp_uri

_log = logging.getLogger(__name__)

STYLED_CONTEXT = {"companion": {"styled": True}}
"""Request context meaning: the text is already in the persona's style; speak it as it is."""


def pcm_to_float(audio: bytes, width: int, channels: int) -> Float32Array:
    """Interleaved little-endian PCM to mono float; RemoteError for a format we cannot read."""
    dtypes = {1: np.uint8, 2: np.int16, 4: np.int32}
    if width not in dtypes or channels < 1 or channels > 8:
        raise RemoteError(f"unsupported audio format: {width * 8}-bit, {channels} channel(s)")
    usable = len(audio) - len(audio) % (width * channels)
    raw = np.frombuffer(audio[:usable], dtype=np.dtype(dtypes[width]).newbyteorder("<"))
    x = (raw.astype(np.float32) - 128.0) / 128.0 if width == 1 else raw.astype(np.float32) / float(2 ** (8 * width - 1))
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x.astype(np.float32)


class WyomingSynthesizer:
    """The :class:`~companion.stages.Synthesizer` protocol on a Wyoming TTS server."""

    def __init__(
        self,
        uri: str,
        *,
        voice: str | None = None,
        sample_rate: int = 22050,
        connect_timeout_s: float = 0.5,
        deadline_s: float = 3.0,
    ) -> None:
        parse_tcp_uri(uri, key="tts.uri")
        self.uri = uri
        self.voice = voice
        self.sample_rate = sample_rate
        self.connect_timeout_s = connect_timeout_s
        self.deadline_s = deadline_s
        self.name = f"wyoming {uri}" + (f" voice {voice}" if voice else "")
        self._streams: bool | None = None
        self._lock = threading.Lock()

    def streams(self) -> bool:
        """Whether the server takes streaming synthesis (asked once per connection outage)."""
        with self._lock:
            if self._streams is None:
                info = describe(self.uri, connect_timeout=self.connect_timeout_s, timeout=self.deadline_s)
                self._streams = any(p.supports_synthesize_streaming for p in info.tts)
                if not info.tts:
                    raise RemoteError(f"{self.uri}: not a text-to-speech server (its info lists no tts)")
            return self._streams

    def forget_server(self) -> None:
        """The server failed: ask what it supports again next time (it may have been replaced)."""
        with self._lock:
            self._streams = None

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        text = text.strip()
        if not text:
            return
        try:
            yield from self._synthesize(text)
        except RemoteError:
            self.forget_server()
            raise

    def _synthesize(self, text: str) -> Iterator[Float32Array]:
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.error import Error
        from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped
        from wyoming.tts import SynthesizeVoice as Voice

        streaming = self.streams()
        voice = Voice(name=self.voice) if self.voice else None
        with WyomingConnection(self.uri, connect_timeout=self.connect_timeout_s, timeout=self.deadline_s) as conn:
            request = Synthesize(text=text, voice=voice, context=STYLED_CONTEXT)
            if streaming:
                conn.send(SynthesizeStart(voice=voice, context=STYLED_CONTEXT))
                conn.send(SynthesizeChunk(text=text))
                conn.send(request)  # for servers that ignore the stream (the protocol's compatibility rule)
                conn.send(SynthesizeStop())
            else:
                conn.send(request)
            sent = time.monotonic()
            first = True
            resampler: Any = None
            source_rate = 0
            while True:
                event = conn.receive(sent + self.deadline_s if first else None)
                if Error.is_type(event.type):
                    raise RemoteError(f"{self.uri}: server error: {Error.from_event(event).text}")
                if AudioStart.is_type(event.type) or AudioChunk.is_type(event.type):
                    try:
                        fmt = (AudioChunk if AudioChunk.is_type(event.type) else AudioStart).from_event(event)
                    except (KeyError, TypeError, ValueError) as exc:
                        raise RemoteError(f"{self.uri}: malformed {event.type} event ({exc})") from None
                    if fmt.rate <= 0 or fmt.rate > 192000:
                        raise RemoteError(f"{self.uri}: unsupported audio rate {fmt.rate}")
                    if fmt.rate != source_rate:
                        resampler, source_rate = self._resampler(fmt.rate), fmt.rate
                    if isinstance(fmt, AudioChunk):
                        block = pcm_to_float(fmt.audio, fmt.width, fmt.channels)
                        if resampler is not None:  # resampling can overshoot full scale a little
                            block = np.clip(resampler.resample_chunk(block), -1.0, 1.0).astype(np.float32)
                        if block.size:
                            if first:
                                _log.debug("wyoming tts: first audio %.0f ms", (time.monotonic() - sent) * 1000)
                            first = False
                            yield block
                elif AudioStop.is_type(event.type):
                    if resampler is not None:
                        tail = np.clip(resampler.resample_chunk(np.zeros(0, np.float32), last=True), -1.0, 1.0)
                        tail = tail.astype(np.float32)
                        resampler, source_rate = None, 0
                        if tail.size:
                            yield tail
                    if not streaming:
                        return
                elif SynthesizeStopped.is_type(event.type):
                    return

    def _resampler(self, rate: int) -> Any:
        if rate == self.sample_rate:
            return None
        import soxr

        return soxr.ResampleStream(rate, self.sample_rate, 1, dtype="float32")

    def backend_status(self) -> dict[str, object]:
        return {"backend": self.name, "health": "unknown"}
