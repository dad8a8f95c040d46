"""Acoustic echo cancellation: the robot hears the user, not itself.

:class:`EchoReference` keeps what the speaker actually played, stamped with when it
was heard (the speaker's callback knows its DAC delay). For each microphone block,
stamped with when it was captured, the listen stage reads the reference for the same
moment and :class:`SpeexEchoCanceller` (SpeexDSP's MDF adaptive filter, over ctypes to
the system's libspeexdsp) removes the echo, then its preprocessor suppresses what
echo is left. The reference is read a little early (``lead_ms``) so that timing
errors still leave the echo inside the filter's tail.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from companion.errors import UserError
from companion.messages import Float32Array, Int16Array

_log = logging.getLogger(__name__)

_ECHO_SET_SAMPLING_RATE = 24
_PP_SET_DENOISE = 0
_PP_SET_ECHO_SUPPRESS = 20
_PP_SET_ECHO_SUPPRESS_ACTIVE = 22
_PP_SET_ECHO_STATE = 24
_lib_cache: list[ctypes.CDLL] = []


def speexdsp() -> ctypes.CDLL:
    """The system's libspeexdsp, with argument types declared."""
    if _lib_cache:
        return _lib_cache[0]
    name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise UserError(
            "audio.echo_cancel: speex needs libspeexdsp (apt-get install libspeexdsp1); "
            "or set audio.echo_cancel to external or off"
        ) from None
    p, i, i16 = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.restype = p
    lib.speex_echo_state_init.argtypes = [i, i]
    lib.speex_echo_state_destroy.argtypes = [p]
    lib.speex_echo_cancellation.argtypes = [p, i16, i16, i16]
    lib.speex_echo_ctl.argtypes = [p, i, p]
    lib.speex_echo_state_reset.argtypes = [p]
    lib.speex_preprocess_state_init.restype = p
    lib.speex_preprocess_state_init.argtypes = [i, i]
    lib.speex_preprocess_state_destroy.argtypes = [p]
    lib.speex_preprocess_ctl.argtypes = [p, i, p]
    lib.speex_preprocess_run.argtypes = [p, i16]
    _lib_cache.append(lib)
    return lib


@dataclass
class EchoStats:
    """How well and how cheaply echo is being removed."""

    frames: int = 0
    seconds_spent: float = 0.0
    echo_in_energy: float = 0.0
    """Microphone energy in frames where the speaker was playing."""
    echo_out_energy: float = 0.0
    """...and what was left of it after cancellation."""

    @property
    def cost_ms_per_frame(self) -> float:
        return 1000.0 * self.seconds_spent / self.frames if self.frames else 0.0

    @property
    def erle_db(self) -> float:
        """Echo return loss enhancement over the frames with far-end audio (dB)."""
        if self.echo_out_energy <= 0 or self.echo_in_energy <= 0:
            return 0.0
        return float(10.0 * np.log10(self.echo_in_energy / self.echo_out_energy))


class SpeexEchoCanceller:
    """SpeexDSP echo canceller plus residual echo suppression, on 16-bit mono frames."""

    def __init__(
        self,
        rate: int = 16000,
        *,
        frame_ms: int = 10,
        tail_ms: int = 250,
        suppress_db: int = -45,
        suppress_active_db: int = -20,
    ) -> None:
        self._lib = lib = speexdsp()
        self.rate = rate
        self.frame = rate * frame_ms // 1000
        self.tail_s = tail_ms / 1000.0
        self._echo = lib.speex_echo_state_init(self.frame, rate * tail_ms // 1000)
        self._pre = lib.speex_preprocess_state_init(self.frame, rate)
        if not self._echo or not self._pre:
            raise UserError("audio.echo_cancel: speex could not start its echo canceller")
        value = ctypes.c_int(rate)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(value))
        lib.speex_preprocess_ctl(self._pre, _PP_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
        for request, setting in (
            (_PP_SET_DENOISE, 0),
            (_PP_SET_ECHO_SUPPRESS, suppress_db),
            (_PP_SET_ECHO_SUPPRESS_ACTIVE, suppress_active_db),
        ):
            value = ctypes.c_int(setting)
            lib.speex_preprocess_ctl(self._pre, request, ctypes.byref(value))
        self.stats = EchoStats()
        self._lock = threading.Lock()

    def process(self, mic: Int16Array, ref: Int16Array) -> Int16Array:
        """The microphone block with the echo of ``ref`` (same length, same moment) removed."""
        n = len(mic) - len(mic) % self.frame
        if len(ref) != len(mic):
            raise ValueError(f"echo reference has {len(ref)} samples for {len(mic)} microphone samples")
        mic_c = np.ascontiguousarray(mic[:n], dtype=np.int16)
        ref_c = np.ascontiguousarray(ref[:n], dtype=np.int16)
        out = np.empty(n, dtype=np.int16)
        ptr = ctypes.POINTER(ctypes.c_int16)
        t = time.perf_counter()
        with self._lock:
            for start in range(0, n, self.frame):
                end = start + self.frame
                o = out[start:end]
                self._lib.speex_echo_cancellation(
                    self._echo,
                    mic_c[start:end].ctypes.data_as(ptr),
                    ref_c[start:end].ctypes.data_as(ptr),
                    o.ctypes.data_as(ptr),
                )
                self._lib.speex_preprocess_run(self._pre, o.ctypes.data_as(ptr))
                if np.any(ref_c[start:end]):
                    self.stats.echo_in_energy += float(np.dot(mic_c[start:end].astype(np.float64), mic_c[start:end]))
                    self.stats.echo_out_energy += float(np.dot(o.astype(np.float64), o)) + 1.0
            self.stats.frames += n // self.frame
            self.stats.seconds_spent += time.perf_counter() - t
        if n < len(mic):  # a ragged end (not a whole frame): passed on as it is
            out = np.concatenate([out, mic[n:].astype(np.int16)])
        return out

    def reset(self) -> None:
        with self._lock:
            self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        with self._lock:
            if self._echo:
                self._lib.speex_preprocess_state_destroy(self._pre)
                self._lib.speex_echo_state_destroy(self._echo)
                self._echo = self._pre = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class EchoReference:
    """What the speaker played, on the monotonic clock, at the microphone's rate.

    Written by the speaker (its callback thread), read by the listen stage. A ring of
    ``seconds`` of audio; a slot that was not written for the time asked for reads as
    silence.

    Blocks are placed by counting samples from where the stream started, not by the
    moment each callback says it is heard: those moments jitter by tens of
    milliseconds (on PulseAudio the reported output delay saw-tooths between 28 and
    70 ms), and an echo filter cannot follow a reference that wanders. Only a block
    more than ``gap_s`` away from where counting puts it (the stream stopped, or its
    clock drifted that far) starts the count again from its own moment. What counting
    cannot see (an underrun that delays everything after it) the microphone side
    finds by cross-correlation.
    """

    def __init__(
        self,
        rate: int = 16000,
        *,
        seconds: float = 6.0,
        gap_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.gap_s = gap_s
        self._n = int(rate * seconds)
        self._ring = np.zeros(self._n, dtype=np.int16)
        self._stamp = np.full(self._n, -1, dtype=np.int64)
        self._origin = clock()
        self._clock = clock
        self._lock = threading.Lock()
        self._next = -1.0  # where the next contiguous block goes (sample index)
        self._next_in = 0.0  # when the next contiguous input block is heard
        self._resampler: object | None = None
        self._resampler_rate = 0
        self._last_sound = -1.0e9
        self.restarts = 0
        """Times the count started again from a block's own moment (the timeline moved)."""

    def _index(self, t: float) -> int:
        return round((t - self._origin) * self.rate)

    def played(self, samples: Float32Array, rate: int, heard_at: float) -> None:
        """``samples`` (float, at ``rate``) reach the listener's ear at ``heard_at``."""
        import soxr

        if len(samples) == 0:
            return
        with self._lock:
            contiguous = self._next >= 0 and abs(heard_at - self._next_in) <= self.gap_s
            if not contiguous or rate != self._resampler_rate:
                if self._next >= 0:
                    self.restarts += 1
                    _log.debug("speaker timeline restarted %.0f ms off the count", (heard_at - self._next_in) * 1000)
                same = rate == self.rate
                self._resampler = None if same else soxr.ResampleStream(rate, self.rate, 1, dtype="float32")
                self._resampler_rate = rate
                self._next = float(self._index(heard_at))
                self._next_in = heard_at
            self._next_in += len(samples) / rate
            x = np.asarray(samples, dtype=np.float32)
            if self._resampler is not None:  # its output lags a little: placed from the stream's start
                x = self._resampler.resample_chunk(x)  # type: ignore[attr-defined]
            pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
            idx = round(self._next) + np.arange(len(pcm), dtype=np.int64)
            self._ring[idx % self._n] = pcm
            self._stamp[idx % self._n] = idx
            self._next += len(pcm)
            if np.any(pcm):
                self._last_sound = heard_at + len(samples) / rate

    def read(self, start: float, n: int) -> Int16Array:
        """``n`` samples of what was heard from ``start`` on (silence where nothing played)."""
        with self._lock:
            idx = self._index(start) + np.arange(n, dtype=np.int64)
            slots = idx % self._n
            valid = self._stamp[slots] == idx
            return np.where(valid, self._ring[slots], 0).astype(np.int16)

    def sounding(self, at: float, tail_s: float = 0.3) -> bool:
        """True if the speaker was heard within ``tail_s`` before ``at`` (echo may still ring)."""
        return at <= self._last_sound + tail_s
