"""A room for the robot on a private PulseAudio server: its echo, and a person talking.

:class:`Room` reads what the robot plays (``speaker.monitor``) in 10 ms blocks,
passes it through a room impulse response (a direct path after ``delay_ms`` at
``gain_db``, early reflections and a diffuse tail of ``rt60_s``), mixes in what the
person says, and writes the sum into the robot's microphone. Speaker, person
and microphone share one timeline (the block count), so the moment the person
starts and the moment the robot falls silent are measured on the same clock. The
pipes in and out (``parec``, ``pipe_ms`` buffers) add their own delay on top
of ``delay_ms``, so times measured on the timeline are upper bounds. The room's thread,
its pipes and the sound server run at real-time priority where the system allows it
(as a room's air does not wait for the robot's CPU).

The microphone is a pipe source (:class:`PulseServer` ``pipe_sources``): it hears
the room's blocks as they are written, on the speaker's clock, as a board whose
microphone and speaker share one codec does. Written into a null sink through
``pacat``, as it was, the microphone ran on that sink's clock: ``pacat -v`` showed its
buffer draining ~1 ms every second and underrunning every few seconds (342 times in
2.5 minutes), each underrun moving the echo 5-9 ms, and the robot's echo canceller
was trusted for 11 % of the speaker's time, relearning after every move.
"""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass
from typing import IO

import numpy as np

from companion.audio.realtime import make_realtime
from companion.bench.pulse import PulseServer

RATE = 16000
BLOCK = RATE // 100  # 10 ms


def room_response(gain_db: float, delay_ms: float, rt60_s: float, seed: int = 0) -> np.ndarray:
    """An impulse response with energy ``gain_db`` relative to the direct sound's source."""
    rng = np.random.default_rng(seed)
    n = int(max(rt60_s, 0.05) * RATE) + int(delay_ms * RATE / 1000) + 1
    ir = np.zeros(n)
    d = int(delay_ms * RATE / 1000)
    ir[d] = 1.0
    for _ in range(10):  # early reflections off the robot's body and the table
        ir[min(n - 1, d + int(rng.uniform(1.5, 30) * RATE / 1000))] += rng.uniform(-0.45, 0.45)
    if rt60_s > 0:
        t = np.arange(n - d)
        ir[d:] += rng.standard_normal(n - d) * np.exp(-6.9 * t / (rt60_s * RATE)) * 0.06
    return ir * 10 ** (gain_db / 20) / np.sqrt(np.sum(ir**2))


@dataclass
class Talk:
    start: int
    """Timeline sample at which the clip starts."""
    samples: np.ndarray


class Room:
    def __init__(
        self,
        pulse: PulseServer,
        *,
        gain_db: float = -6.0,
        delay_ms: float = 40.0,
        rt60_s: float = 0.25,
        speaker: str = "speaker.monitor",
        mic: str = "mic",
        seed: int = 0,
        noise_dbfs: float = -65.0,
        pipe_ms: int = 30,
    ) -> None:
        self.pipe_ms = pipe_ms
        self.pulse = pulse
        self.ir = room_response(gain_db, delay_ms, rt60_s, seed)
        self.speaker, self.mic = speaker, mic
        self.noise = 10 ** (noise_dbfs / 20)
        self._rng = np.random.default_rng(seed + 1)
        self._tail = np.zeros(len(self.ir) - 1)
        self._lock = threading.Lock()
        self._talks: list[Talk] = []
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []  # (speaker, mic) per block
        self._levels: list[float] = []  # the speaker's level per block (dBFS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: list[subprocess.Popen[bytes]] = []
        self._out: IO[bytes] | None = None  # the microphone's FIFO

    # ---- running ----------------------------------------------------------------------

    def start(self) -> Room:
        if self.mic not in self.pulse.pipe_sources:
            raise ValueError(f"the room's microphone {self.mic!r} must be one of the server's pipe_sources")
        fmt = ["--format=s16le", f"--rate={RATE}", "--channels=1", f"--latency-msec={self.pipe_ms}", "--raw"]
        src = subprocess.Popen(
            ["parec", f"--device={self.speaker}", *fmt],
            env=self.pulse.env,
            stdout=subprocess.PIPE,
            preexec_fn=make_realtime,
        )
        self._procs = [src]
        self._out = self.pulse.fifo(self.mic).open("wb", buffering=0)  # heard as written: the speaker's clock
        self._thread = threading.Thread(target=self._run, args=(src, self._out), name="room", daemon=True)
        self._thread.start()
        return self

    def _run(self, src: subprocess.Popen[bytes], out: IO[bytes]) -> None:
        assert src.stdout is not None
        make_realtime()  # a room's air does not wait for the robot's CPU
        while not self._stop.is_set():
            data = src.stdout.read(BLOCK * 2)
            if not data or len(data) < BLOCK * 2:
                break
            played = np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
            wet = np.convolve(played, self.ir)
            wet[: len(self._tail)] += self._tail
            self._tail = wet[BLOCK:].copy()
            mic = wet[:BLOCK] + self.noise * self._rng.standard_normal(BLOCK)
            with self._lock:
                now = len(self._blocks) * BLOCK
                for talk in self._talks:
                    a = now - talk.start
                    if a + BLOCK >= 0 and a < len(talk.samples):
                        lo, hi = max(a, 0), min(a + BLOCK, len(talk.samples))
                        mic[lo - a : hi - a] += talk.samples[lo:hi]
                self._blocks.append((played.astype(np.float32), mic.astype(np.float32)))
                self._levels.append(float(20 * np.log10(np.sqrt(np.mean(played**2)) + 1e-9)))
            try:
                out.write((np.clip(mic, -1, 1) * 32767).astype("<i2").tobytes())
                out.flush()
            except (BrokenPipeError, ValueError, OSError):
                break

    def stop(self) -> None:
        self._stop.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._thread is not None:
            self._thread.join(5)
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> Room:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- the person -------------------------------------------------------------------

    @property
    def now(self) -> int:
        """The timeline position (samples)."""
        with self._lock:
            return len(self._blocks) * BLOCK

    def say(self, samples: np.ndarray) -> int:
        """Start saying ``samples`` (float, 16 kHz) into the microphone now; the timeline sample it starts at."""
        with self._lock:
            start = (len(self._blocks) + 1) * BLOCK
            self._talks.append(Talk(start, np.asarray(samples, dtype=np.float64)))
            return start

    # ---- what happened ----------------------------------------------------------------

    def recordings(self) -> tuple[np.ndarray, np.ndarray]:
        """(speaker, microphone) over the whole timeline."""
        with self._lock:
            if not self._blocks:
                return np.zeros(0, np.float32), np.zeros(0, np.float32)
            return np.concatenate([b[0] for b in self._blocks]), np.concatenate([b[1] for b in self._blocks])

    def speaker_level_dbfs(self, start: int, end: int | None = None) -> np.ndarray:
        """The speaker's level in 10 ms blocks over [start, end) of the timeline (whole blocks).

        Read from levels kept as the room runs: the bench polls this every few milliseconds,
        and going over the whole recording each time starved the room's own thread (its
        pipes then ran dry, which moved the echo by milliseconds at a time)."""
        with self._lock:
            return np.asarray(self._levels[start // BLOCK : None if end is None else end // BLOCK])

    def quiet_from(self, start: int, end: int, *, floor_dbfs: float = -45.0) -> int | None:
        """The timeline sample in [start, end) from which the speaker stays quiet until ``end``.

        None if it is still sounding at ``end`` (it never stopped). A pause between two
        sentences is not a stop: the speaker sounds again after it."""
        levels = self.speaker_level_dbfs(start, end)
        loud = np.flatnonzero(levels >= floor_dbfs)
        if len(levels) < (end - start) // BLOCK or (len(loud) and loud[-1] == len(levels) - 1):
            return None
        return start + (int(loud[-1]) + 1 if len(loud) else 0) * BLOCK

    def speaking_since(self, floor_dbfs: float = -40.0) -> float:
        """Seconds the speaker has been sounding without a pause of 300 ms (0 if silent now)."""
        levels = self.speaker_level_dbfs(max(0, self.now - 30 * RATE))
        loud = levels > floor_dbfs
        run = 0
        gap = 0
        for on in loud[::-1]:
            if on:
                run += 1 + gap
                gap = 0
            else:
                gap += 1
                if gap >= 30 or run == 0:
                    break
        return run / 100.0 if loud.size and loud[-1] else 0.0
