"""Audio sinks: the speaker, and per-turn WAV files for recordings."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from companion.audio.devices import resolve_device
from companion.audio.io import write_wav
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


class SpeakerSink:
    """The speaker, through a PortAudio output stream.

    The stream opens at the voice's own rate when the device takes it (no
    resampling in the hot path) and otherwise at ``rate``/the device default,
    resampling as it goes. It stays open between replies so a reply starts
    without the cost of opening a device.
    """

    def __init__(self, device: int | str | None = None, *, rate: int | None = None, latency: str = "low") -> None:
        self.device = device
        self.rate = rate
        self.latency = latency
        self._stream: Any = None
        self._stream_rate = 0
        self._resampler: Any = None
        self._lock = threading.Lock()
        self._written_until = 0.0  # monotonic time at which queued audio runs out

    def _open(self, audio_rate: int) -> None:
        import sounddevice as sd

        info = resolve_device(self.device, "output")
        wanted = [r for r in (self.rate or audio_rate, int(info.default_rate)) if r]
        last: Exception | None = None
        for rate in dict.fromkeys(wanted):
            try:
                stream = sd.OutputStream(
                    samplerate=rate, device=info.index, channels=1, dtype="float32", latency=self.latency
                )
                stream.start()
            except sd.PortAudioError as exc:
                last = exc
                continue
            self._stream, self._stream_rate = stream, rate
            _log.info("speaking on %r at %d Hz (latency %.0f ms)", info.name, rate, stream.latency * 1000)
            return
        raise NoAudioDeviceError(
            f"cannot open speaker {info.name!r}: {last}; pick another with audio.output_device "
            "(see 'companion devices')"
        )

    def begin(self, turn: int) -> None:
        self._resampler = None
        with self._lock:
            if self._stream is not None and self._stream.stopped:
                self._stream.start()

    def write(self, audio: SpokenAudio) -> float:
        with self._lock:
            if self._stream is None:
                self._open(audio.rate)
            samples = audio.samples
            if audio.rate != self._stream_rate:
                import soxr

                if self._resampler is None:
                    self._resampler = soxr.ResampleStream(audio.rate, self._stream_rate, 1, dtype="float32")
                samples = self._resampler.resample_chunk(samples)
            now = time.monotonic()
            delay = max(self._written_until - now, 0.0) + float(self._stream.latency)
            self._written_until = max(self._written_until, now) + len(samples) / self._stream_rate
            self._stream.write(np.ascontiguousarray(samples, dtype=np.float32))
            return delay

    def end(self, turn: int) -> str:
        """Wait until the reply has been heard."""
        if self._stream is not None:
            remaining = self._written_until - time.monotonic() + float(self._stream.latency)
            if remaining > 0:
                time.sleep(remaining)
            with self._lock:  # idle between replies: stop, so the device does not run dry
                self._stream.stop()
        return ""

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                try:
                    self._stream.stop()
                    self._stream.close()
                except Exception:
                    _log.debug("closing the output stream failed", exc_info=True)
                self._stream = None
