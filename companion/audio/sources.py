"""Audio sources: a microphone, and a recording played through the same path."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from companion.audio.devices import resolve_device
from companion.audio.io import STT_RATE, load_for_stt
from companion.audio.realtime import make_realtime
from companion.errors import NoAudioDeviceError
from companion.messages import AudioChunk, Int16Array
from companion.stages import DeviceLost

_log = logging.getLogger(__name__)


class FileSource:
    """A recording, delivered in mic-sized blocks as if it were being spoken now.

    ``realtime=True`` paces blocks by the audio clock (a 10 s file takes 10 s);
    ``realtime=False`` delivers them as fast as the loop takes them.
    """

    live = False

    def __init__(
        self,
        samples: Int16Array,
        *,
        rate: int = STT_RATE,
        block_ms: int = 30,
        realtime: bool = True,
        tail_s: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        gate: Callable[[], None] | None = None,
    ) -> None:
        pad = np.zeros(int(tail_s * rate), dtype=np.int16)  # lets the last turn end by silence
        self.samples = np.concatenate([samples.astype(np.int16), pad])
        self.rate = rate
        self.block = rate * block_ms // 1000
        self.realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self.gate = gate
        """Called before each block when not real-time: blocks while the robot is answering,
        like a person waiting for the reply (so --fast still measures each turn alone)."""
        self._closed = threading.Event()

    @classmethod
    def from_file(cls, path: Path | str, **kwargs: Any) -> FileSource:
        return cls(load_for_stt(path), **kwargs)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    def chunks(self) -> Iterator[AudioChunk]:
        start = self._clock()
        for offset in range(0, len(self.samples), self.block):
            if self._closed.is_set():
                return
            block = self.samples[offset : offset + self.block]
            chunk = AudioChunk(block, self.rate, offset / self.rate)
            if self.realtime:
                wait = start + chunk.end_s - self._clock()
                if wait > 0:
                    self._sleep(wait)
            elif self.gate is not None:
                self.gate()
            yield chunk

    def close(self) -> None:
        self._closed.set()


class MicSource:
    """The microphone, through a PortAudio input stream at 16 kHz mono."""

    live = True

    def __init__(
        self,
        device: int | str | None = None,
        *,
        rate: int = STT_RATE,
        block_ms: int = 30,
        stall_timeout_s: float = 2.0,
        gap_s: float = 0.2,
    ) -> None:
        self.device = device
        self.gap_s = gap_s
        self.rate = rate
        self.block = rate * block_ms // 1000
        self.stall_timeout_s = stall_timeout_s
        self._queue: queue.Queue[tuple[bytes, float]] = queue.Queue(maxsize=400)
        self._closed = threading.Event()
        self._frames = 0
        self._overflows = 0
        self._latency = 0.0
        self._anchor = 0.0
        self._counted = 0
        self._late: collections.deque[tuple[float, float]] = collections.deque()  # (arrived, how late)

    def open_stream(self) -> Any:
        import sounddevice as sd

        info = resolve_device(self.device, "input")

        rt_asked: list[bool] = []  # the callback thread has asked for real-time priority

        def callback(data: Any, frames: int, _time: Any, status: Any) -> None:
            if not rt_asked:
                rt_asked.append(make_realtime())
            if status.input_overflow:
                self._overflows += 1
            captured_at = self._capture_time(time.monotonic() - self._latency - frames / self.rate, frames)
            try:
                self._queue.put_nowait((bytes(data), captured_at))
            except queue.Full:
                self._overflows += 1

        try:
            stream = sd.RawInputStream(
                samplerate=self.rate,
                blocksize=self.block,
                device=info.index,
                channels=1,
                dtype="int16",
                latency="low",
                callback=callback,
            )
            self._latency = float(stream.latency)
            stream.start()
        except sd.PortAudioError as exc:
            raise NoAudioDeviceError(
                f"cannot open microphone {info.name!r} at {self.rate} Hz: {exc}; "
                "pick another with audio.input_device (see 'companion devices') or use --input REC.wav"
            ) from None
        _log.info("listening on %r", info.name)
        return stream

    def _capture_time(self, arrived: float, frames: int) -> float:
        """When a block's first sample was captured, on a sample-counted timeline.

        Arrival times jitter by tens of milliseconds (thread scheduling, the sound
        server's bursts), and an echo canceller cannot follow a microphone whose
        timestamps wander against the speaker's; PortAudio's own ADC timestamps through
        PulseAudio's ALSA plugin were off by ~0.3 s. So blocks are placed one after the
        other by counting samples, as the speaker's are (:class:`EchoReference`): the
        two counts keep a fixed offset, which the echo path measures.

        Late blocks are not lost ones: a callback starved by a busy CPU gets the sound server's
        backlog in a burst, and those samples were captured when the count says (starting the
        count again at the first late block stamped every sample after it that much late, and
        moved the echo by as much). The count starts again when samples were lost (every block
        that arrived in the last second came ``gap_s`` or more later than counted: it moves by
        the least of those; the overflow flag is not used, as it was never measured through
        PulseAudio here), or when a block arrives before it can have been captured.
        """
        expected = self._anchor + self._counted / self.rate
        late = arrived - expected
        if self._counted == 0 or late < -self.gap_s:
            self._anchor, self._counted, expected = arrived, 0, arrived
            self._late.clear()
        else:
            self._late.append((arrived, late))
            while len(self._late) > 1 and self._late[1][0] <= arrived - 1.0:
                self._late.popleft()  # a second of arrivals (a burst after a stall is not one)
            if self._late[0][0] <= arrived - 1.0 and (least := min(x for _, x in self._late)) > self.gap_s:
                expected += least
                self._anchor, self._counted = expected, 0
                self._late.clear()
        self._counted += frames
        return expected

    def chunks(self) -> Iterator[AudioChunk]:
        stream = self.open_stream()
        try:
            while not self._closed.is_set():
                try:
                    data, captured_at = self._queue.get(timeout=self.stall_timeout_s)
                except queue.Empty:
                    if self._closed.is_set():
                        return
                    if not stream.active:
                        raise DeviceLost("the microphone stream stopped") from None
                    raise DeviceLost(f"no audio from the microphone for {self.stall_timeout_s:g} s") from None
                samples = np.frombuffer(data, dtype=np.int16)
                chunk = AudioChunk(samples, self.rate, self._frames / self.rate, captured_at)
                self._frames += len(samples)
                yield chunk
        finally:
            try:
                stream.abort()
                stream.close()
            except Exception:  # the device may already be gone
                _log.debug("closing the input stream failed", exc_info=True)

    def close(self) -> None:
        self._closed.set()
