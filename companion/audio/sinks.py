"""Audio sinks: the speaker, and per-turn WAV files for recordings."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from companion.audio.devices import resolve_device
from companion.audio.echo import EchoReference
from companion.audio.io import write_wav
from companion.audio.realtime import make_realtime
from companion.errors import NoAudioDeviceError
from companion.messages import Float32Array, SpokenAudio

_log = logging.getLogger(__name__)


class FileSink:
    """Writes each reply to ``DIR/turn-NNN.wav``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._blocks: list[Float32Array] = []
        self._rate = 0

    def begin(self, turn: int) -> None:
        self._blocks = []

    def write(self, audio: SpokenAudio) -> float:
        if self._rate and audio.rate != self._rate and self._blocks:
            from companion.audio.io import resample

            self._blocks.append(resample(audio.samples, audio.rate, self._rate))
        else:
            self._rate = audio.rate
            self._blocks.append(audio.samples)
        return 0.0

    def end(self, turn: int) -> str:
        name = f"turn-{turn:03d}.wav"
        samples = np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)
        write_wav(self.out_dir / name, samples, self._rate or 22050)
        self._blocks = []
        return name

    def close(self) -> None:
        pass


CALLBACK_LATENCY_S = {"low": 0.08, "high": 0.2}
"""Output buffering asked of PortAudio: "low" as PortAudio means it (~10 ms) underruns on PulseAudio."""


class SpeakerSink:
    """The speaker, through a callback-driven PortAudio output stream.

    Audio waits in a short queue that the stream's callback drains, so a reply can be
    faded out and dropped at once (:meth:`fade_out`, for barge-in and shutdown) instead
    of after the samples already handed over. The callback also gives each block it
    plays, with the moment it is heard, to the echo ``reference``.

    The stream opens at the voice's own rate when the device takes it (no resampling
    in the hot path) and otherwise at ``rate``/the device default, resampling as it
    goes. Once open it keeps running (silence between replies): a stream restarted per
    reply starts after a different delay each time, which an echo canceller cannot follow.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        rate: int | None = None,
        latency: str = "low",
        reference: EchoReference | None = None,
        max_ahead_s: float = 2.0,
    ) -> None:
        self.device = device
        self.rate = rate
        self.latency = latency
        self.reference = reference
        self.max_ahead_s = max_ahead_s
        self._stream: Any = None
        self._stream_rate = 0
        self._resampler: Any = None
        self._cond = threading.Condition()
        self._queue: collections.deque[Float32Array] = collections.deque()
        self._queued = 0  # samples waiting in _queue
        self._fade: Float32Array | None = None  # a fade-out ramp to apply, then drop the rest
        self._gain = 1.0  # the voice's gain now: 0 while paused (see pause)
        self._gain_to = 1.0  # ...and where it is ramping to
        self._gain_step = 1.0  # ...by this much a sample
        self._cut = False  # faded out: drop writes until the next reply begins
        self._out_delay = 0.0  # seconds from the callback to the DAC
        self._rt_asked = False  # the callback thread has asked for real-time priority

    def _open(self, audio_rate: int) -> None:
        import sounddevice as sd

        info = resolve_device(self.device, "output")
        wanted = [r for r in (self.rate or audio_rate, int(info.default_rate)) if r]
        last: Exception | None = None
        for rate in dict.fromkeys(wanted):
            try:
                stream = sd.OutputStream(
                    samplerate=rate,
                    device=info.index,
                    channels=1,
                    dtype="float32",
                    latency=CALLBACK_LATENCY_S.get(self.latency, self.latency),
                    callback=self._callback,
                )
                self._stream_rate = rate
                stream.start()
            except sd.PortAudioError as exc:
                last = exc
                continue
            self._stream = stream
            self._out_delay = float(stream.latency)
            _log.info("speaking on %r at %d Hz (latency %.0f ms)", info.name, rate, stream.latency * 1000)
            return
        raise NoAudioDeviceError(
            f"cannot open speaker {info.name!r}: {last}; pick another with audio.output_device "
            "(see 'companion devices')"
        )

    def _callback(self, outdata: Any, frames: int, time_info: Any, _status: Any) -> None:
        if not self._rt_asked:
            self._rt_asked = True
            make_realtime()
        block = np.zeros(frames, dtype=np.float32)
        with self._cond:
            want = frames
            if self._fade is None and self._gain_to == 0.0:  # pausing: play up to where the ramp ends
                want = min(frames, math.ceil(self._gain / self._gain_step)) if self._gain > 0.0 else 0
            filled = 0
            while filled < want and self._queue:
                head = self._queue[0]
                take = min(want - filled, len(head))
                block[filled : filled + take] = head[:take]
                if take == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
                filled += take
            self._queued -= filled
            if self._gain != 1.0 or self._gain_to != 1.0:
                sign = 1.0 if self._gain_to > self._gain else -1.0 if self._gain_to < self._gain else 0.0
                ramp = np.clip(self._gain + sign * self._gain_step * np.arange(1, want + 1), 0.0, 1.0)
                block[:want] *= ramp
                self._gain = float(ramp[-1]) if want else self._gain
            if self._fade is not None:
                ramp = self._fade[:frames]
                block[: len(ramp)] *= ramp
                block[len(ramp) :] = 0.0
                self._fade = self._fade[frames:] if len(self._fade) > frames else None
                if self._fade is None:
                    self._queue.clear()
                    self._queued = 0
            self._cond.notify_all()
        outdata[:, 0] = block
        try:
            delay = float(time_info.outputBufferDacTime - time_info.currentTime)
        except (AttributeError, TypeError):
            delay = -1.0
        if 0.0 <= delay < 1.0:
            self._out_delay = delay
        if self.reference is not None:
            self.reference.played(block, self._stream_rate, time.monotonic() + self._out_delay)

    def begin(self, turn: int) -> None:
        self._resampler = None
        with self._cond:
            self._fade = None
            self._gain = self._gain_to = 1.0
            self._cut = False
            if self._stream is not None and self._stream.stopped:
                self._stream.start()

    def write(self, audio: SpokenAudio) -> float:
        """Queue audio; waits while more than ``max_ahead_s`` is queued. Seconds until it is heard."""
        if self._stream is None:
            with self._cond:
                if self._stream is None:
                    self._open(audio.rate)
        samples = audio.samples
        if audio.rate != self._stream_rate:
            import soxr

            if self._resampler is None:
                self._resampler = soxr.ResampleStream(audio.rate, self._stream_rate, 1, dtype="float32")
            samples = self._resampler.resample_chunk(samples)
        limit = int(self.max_ahead_s * self._stream_rate)
        with self._cond:
            while self._queued > limit and not self._cut and self._stream is not None:
                self._cond.wait(0.1)
            if self._cut:  # faded out: this reply is over
                return 0.0
            delay = self._queued / self._stream_rate + self._out_delay
            self._queue.append(np.ascontiguousarray(samples, dtype=np.float32))
            self._queued += len(samples)
            return delay

    def fade_out(self, seconds: float = 0.03) -> None:
        """Stop the voice now: ramp what is playing down over ``seconds`` and drop the rest."""
        with self._cond:
            self._cut = True
            if self._queued == 0 or self._stream is None:
                return
            n = max(1, int(seconds * self._stream_rate))
            self._fade = np.linspace(1.0, 0.0, n, dtype=np.float32)
            self._cond.notify_all()

    def pause(self, paused: bool, seconds: float = 0.03) -> None:
        """Hold the voice where it is (ramped down over ``seconds``; the rest stays queued), or
        go on from there (ramped up). For a voice heard over the robot that may be about to
        interrupt it: the robot falls silent at once, and carries on if nobody does."""
        with self._cond:
            self._gain_to = 0.0 if paused else 1.0
            self._gain_step = 1.0 / max(1, int(seconds * (self._stream_rate or 16000)))
            self._cond.notify_all()

    def end(self, turn: int) -> str:
        """Wait until the reply has been heard."""
        with self._cond:
            while self._stream is not None and (self._queued > 0 or self._fade is not None):
                if not self._cond.wait(0.5) and not self._stream.active:
                    break
        if self._stream is not None:
            time.sleep(self._out_delay)
        return ""

    def warm(self, rate: int) -> None:
        """Open the device now (before the first reply), at the voice's rate."""
        with self._cond:
            if self._stream is None:
                self._open(rate)

    def close(self) -> None:
        with self._cond:
            stream, self._stream = self._stream, None
            self._queue.clear()
            self._queued = 0
            self._cond.notify_all()
        # Outside the lock: abort() waits for a running callback, which takes the lock.
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                _log.debug("closing the output stream failed", exc_info=True)
