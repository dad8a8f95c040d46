"""A private PulseAudio server (tests, `companion bench --barge-in`): null sinks as a microphone and a speaker.

Nothing here touches the machine's own sound server: the server's runtime dir,
HOME (its cookie) and XDG dirs live in a temporary directory, and every client
started through :attr:`PulseServer.env` talks to it alone. Typical use::

    with PulseServer(tmp_path, sinks=("mic", "speaker"), default_sink="speaker",
                     default_source="mic.monitor") as pulse:
        rec = pulse.record("speaker.monitor", tmp_path / "speaker.raw")
        pulse.play(wav, sink="mic").wait()

What is played into sink ``mic`` is what the default input (``mic.monitor``) hears;
what a program plays on the default output lands in ``speaker`` and can be recorded
from ``speaker.monitor``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RATE = 16000
"""Rate of recordings made with :meth:`PulseServer.record` (mono, 16-bit)."""

NEEDED = ("pulseaudio", "pactl", "paplay", "parec")
INSTALL_HINT = "apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins"


class PulseUnavailable(Exception):
    """PulseAudio is not installed here or would not start; the message says why."""


def missing_tools() -> list[str]:
    return [tool for tool in NEEDED if shutil.which(tool) is None]


class PulseServer:
    def __init__(
        self,
        root: Path,
        *,
        sinks: Sequence[str] = ("mic", "speaker"),
        default_sink: str = "speaker",
        default_source: str = "mic.monitor",
        loopbacks: Sequence[tuple[str, str]] = (),
        pipe_sources: Sequence[str] = (),
    ) -> None:
        """``loopbacks``: (source, sink) pairs copied continuously, e.g. an echo path
        ``("speaker.monitor", "mic")`` from the robot's speaker into its microphone.
        ``pipe_sources``: sources that hear what is written into :meth:`fifo` (16 kHz mono
        16-bit), as it is written: they have no clock of their own, so a writer paced by a
        sink's monitor shares that sink's clock (a null sink fed by ``pacat`` has its own,
        and its buffer drains until it underruns)."""
        self.root = root
        self.sinks, self.loopbacks = tuple(sinks), tuple(loopbacks)
        self.pipe_sources = tuple(pipe_sources)
        self.default_sink, self.default_source = default_sink, default_source
        runtime = root / "runtime"
        self.socket = runtime / "native"
        self.log = root / "pulse.log"
        self.env = {
            **os.environ,
            "PULSE_RUNTIME_PATH": str(runtime),
            "XDG_RUNTIME_DIR": str(root),
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(root / "home" / ".config"),
            "PULSE_SERVER": f"unix:{self.socket}",
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._clients: list[subprocess.Popen[bytes]] = []

    # ---- server ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 15.0) -> PulseServer:
        missing = missing_tools()
        if missing:
            raise PulseUnavailable(f"{', '.join(missing)} not installed ({INSTALL_HINT})")
        for d in ("runtime", "home/.config"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "runtime", 0o700)
        cmd = [
            "pulseaudio",
            "--daemonize=no",
            "--system=false",
            "-n",  # no default.pa: only the modules loaded here
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--disable-shm=yes",
            "--realtime=yes",  # as desktop sound servers run (rtkit); ignored where not allowed
            "--high-priority=yes",
            f"--log-target=file:{self.log}",
            f"--load=module-native-protocol-unix socket={self.socket}",
            *(f"--load=module-null-sink sink_name={name} rate=48000" for name in self.sinks),
            *(
                f"--load=module-pipe-source source_name={name} file={self.fifo(name)} "
                f"format=s16le rate={RATE} channels=1"
                for name in self.pipe_sources
            ),
        ]
        self._proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while self.pactl("info", check=False).returncode != 0:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.log.read_text(errors="replace")[-600:] if self.log.exists() else ""
                raise PulseUnavailable(f"pulseaudio would not start: {log.strip() or 'no log'}")
            time.sleep(0.1)
        for source, sink in self.loopbacks:
            self.pactl("load-module", "module-loopback", f"source={source}", f"sink={sink}", "latency_msec=30")
        self.pactl("set-default-sink", self.default_sink)
        self.pactl("set-default-source", self.default_source)
        return self

    def stop(self) -> None:
        for client in self._clients:
            if client.poll() is None:
                client.send_signal(signal.SIGINT)
                try:
                    client.wait(5)
                except subprocess.TimeoutExpired:
                    client.kill()
                    client.wait()
        self._clients.clear()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def fifo(self, source: str) -> Path:
        """The FIFO whose bytes pipe source ``source`` hears."""
        return self.root / f"{source}.fifo"

    # ---- clients --------------------------------------------------------------------------

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, check=check, timeout=10)

    def play(self, wav: Path, sink: str) -> subprocess.Popen[bytes]:
        """Start playing ``wav`` into ``sink``; wait on the returned process for the end."""
        proc = subprocess.Popen(["paplay", f"--device={sink}", str(wav)], env=self.env)
        self._clients.append(proc)
        return proc

    def record(self, source: str, path: Path) -> Recording:
        """Start recording ``source`` as raw 16 kHz mono 16-bit samples into ``path``."""
        out = path.open("wb")
        proc = subprocess.Popen(
            ["parec", f"--device={source}", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=50"],
            env=self.env,
            stdout=out,
        )
        out.close()
        self._clients.append(proc)
        return Recording(proc, path)


class Recording:
    def __init__(self, proc: subprocess.Popen[bytes], path: Path) -> None:
        self.proc, self.path = proc, path

    def stop(self) -> np.ndarray:
        """Stop recording; the samples as float32 in [-1, 1]."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        data = np.frombuffer(self.path.read_bytes(), dtype="<i2")
        return (data.astype(np.float32) / 32768.0).astype(np.float32)


def speech_spans(
    samples: np.ndarray, rate: int = RATE, *, floor_dbfs: float = -45.0, gap_s: float = 0.8, min_s: float = 0.3
) -> list[tuple[float, float]]:
    """Stretches of sound in a recording: (start_s, end_s), split where it is quiet for ``gap_s``."""
    frame = rate // 50
    n = len(samples) // frame
    if n == 0:
        return []
    frames = samples[: n * frame].reshape(n, frame).astype(np.float64)
    loud = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9) > floor_dbfs
    spans: list[tuple[float, float]] = []
    start = end = None
    for i, on in enumerate(loud):
        if not on:
            continue
        t = i * frame / rate
        if start is None:
            start = t
        elif end is not None and t - end > gap_s:
            spans.append((start, end))
            start = t
        end = t + frame / rate
    if start is not None and end is not None:
        spans.append((start, end))
    return [(a, b) for a, b in spans if b - a >= min_s]
