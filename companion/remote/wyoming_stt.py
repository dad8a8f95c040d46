"""Speech-to-text on a Wyoming server (e.g. wyoming-faster-whisper), streamed while the user speaks.

One connection per turn: ``transcribe``, ``audio-start``, ``audio-chunk``... as the
microphone delivers them, then ``audio-stop``; the server answers ``transcript``.
A helper thread owns the socket, so :meth:`WyomingSttStream.feed` never blocks the
microphone thread and a dead server only costs that thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np

from companion.messages import Float32Array, Int16Array
from companion.remote.health import RemoteError
from companion.remote.wyoming_io import WyomingConnection, parse_tcp_uri
from companion.stt import STT_RATE, SttStream

_log = logging.getLogger(__name__)

_STOP = object()


class WyomingSTT:
    """The :class:`~companion.stages.SpeechToText` protocol (plus ``open_stream``) on a Wyoming ASR server."""

    streams_live = True
    """The loop streams each turn here while the user speaks (:meth:`open_stream`)."""

    def __init__(
        self, uri: str, *, language: str | None = "en", connect_timeout_s: float = 0.5, deadline_s: float = 3.0
    ) -> None:
        parse_tcp_uri(uri, key="stt.uri")
        self.uri = uri
        self.language = language
        self.connect_timeout_s = connect_timeout_s
        self.deadline_s = deadline_s
        self.name = f"wyoming {uri}"

    def open_stream(self, rate: int = STT_RATE) -> WyomingSttStream:
        return WyomingSttStream(self, rate)

    def transcribe(self, audio: Float32Array) -> str:
        stream = self.open_stream(STT_RATE)
        stream.feed((np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16))
        return stream.finish()

    def backend_status(self) -> dict[str, object]:
        return {"backend": self.name, "health": "unknown"}


class WyomingSttStream(SttStream):
    """One turn streamed to the server. ``finish`` raises :class:`RemoteError` on any failure."""

    def __init__(self, owner: WyomingSTT, rate: int) -> None:
        self.owner = owner
        self.rate = rate
        self._items: queue.Queue[object] = queue.Queue()
        self._result: Future[str] = Future()
        self._connected = threading.Event()
        self._cancelled = threading.Event()
        self._conn: WyomingConnection | None = None
        self._thread = threading.Thread(target=self._run, name="companion-stt-stream", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> BaseException | None:
        """The error, once the stream has failed (the caller may give up early)."""
        if self._result.done():
            return self._result.exception()
        return None

    def feed(self, samples: Int16Array) -> None:
        if not self._result.done():
            self._items.put(np.asarray(samples, dtype=np.int16).tobytes())

    def finish(self) -> str:
        self._items.put(_STOP)
        o = self.owner
        wait = o.deadline_s + (0.0 if self._connected.is_set() else o.connect_timeout_s)
        try:
            return self._result.result(timeout=wait)
        except FutureTimeout:
            self.cancel()
            raise RemoteError(f"{o.uri}: no transcript within {wait:g} s") from None

    def cancel(self) -> None:
        self._cancelled.set()
        self._items.put(_STOP)
        conn = self._conn
        if conn is not None:
            conn.close()  # unblocks the helper's socket call

    def _run(self) -> None:
        from wyoming.asr import Transcribe, Transcript
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.error import Error

        o = self.owner
        fmt = {"rate": self.rate, "width": 2, "channels": 1}
        try:
            conn = WyomingConnection(o.uri, connect_timeout=o.connect_timeout_s, timeout=o.deadline_s)
            self._conn = conn
            self._connected.set()
            if self._cancelled.is_set():
                raise RemoteError("cancelled")
            conn.send(Transcribe(language=o.language))
            conn.send(AudioStart(**fmt))
            start = time.monotonic()
            sent = 0
            while (item := self._items.get()) is not _STOP:
                assert isinstance(item, bytes)
                conn.send(AudioChunk(audio=item, timestamp=int(sent * 1000 / self.rate), **fmt))
                sent += len(item) // 2
            if self._cancelled.is_set():
                raise RemoteError("cancelled")
            conn.send(AudioStop(timestamp=int(sent * 1000 / self.rate)))
            stopped = time.monotonic()
            deadline = stopped + o.deadline_s
            while True:
                event = conn.receive(deadline)
                if Transcript.is_type(event.type):
                    text = str(Transcript.from_event(event).text or "").strip()
                    _log.debug(
                        "wyoming stt: %.1f s of audio, transcript %.0f ms after the end (%.1f s streamed)",
                        sent / self.rate,
                        (time.monotonic() - stopped) * 1000,
                        stopped - start,
                    )
                    self._result.set_result(text)
                    return
                if Error.is_type(event.type):
                    raise RemoteError(f"{o.uri}: server error: {Error.from_event(event).text}")
        except BaseException as exc:
            if not self._result.done():
                err = exc if isinstance(exc, RemoteError) else RemoteError(f"{o.uri}: {type(exc).__name__}: {exc}")
                self._result.set_exception(err)
        finally:
            conn_ = self._conn
            if conn_ is not None:
                conn_.close()
