"""Cold start and memory: ``companion run`` as a fresh process, from exec to listening.

Readiness is the daemon's ``READY=1`` on ``$NOTIFY_SOCKET`` (the sd_notify datagram
systemd waits for); if none comes, the ``ready as ... after X s`` log line. The
process answers one recorded turn (``--fast``, replies to files) so that its peak
RSS covers a whole turn; peak RSS is the kernel's ``ru_maxrss`` for the child, and
``VmHWM`` sampled while it runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from companion.bench.results import ColdStart

_MODELS = re.compile(r"models ready: stt (\d+) ms, llm (\d+) ms, tts (\d+) ms")


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident memory so far of process ``pid`` (``VmHWM``), in MB; None if gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return None


def _is_ready(datagram: bytes) -> bool:
    return "READY=1" in datagram.decode(errors="replace").splitlines()


def _terminate(pid: int, grace_s: float = 10.0) -> tuple[int, resource.struct_rusage]:
    """SIGTERM, then SIGKILL after ``grace_s``; the wait status and resource usage."""
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + grace_s
    while time.monotonic() < end:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return status, usage


def run_command(recording: Path, out_dir: Path, config_path: Path | None, persona: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "companion", "run"]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    if persona is not None:
        cmd += ["--persona", persona]
    return [*cmd, "--input", str(recording), "--output-dir", str(out_dir), "--fast"]


def measure_cold_start(
    recording: Path,
    *,
    config_path: Path | None = None,
    persona: str | None = None,
    timeout_s: float = 180.0,
) -> ColdStart:
    with tempfile.TemporaryDirectory(prefix="companion-cold-") as tmp:
        return _measure(Path(tmp), recording, config_path, persona, timeout_s)


def _measure(tmp: Path, recording: Path, config_path: Path | None, persona: str | None, timeout_s: float) -> ColdStart:
    cmd = run_command(recording, tmp / "out", config_path, persona)
    address = str(tmp / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    env = {**os.environ, "NOTIFY_SOCKET": address}
    env.pop("WATCHDOG_USEC", None)
    log_ready: list[float] = []
    models_ms: dict[str, float] = {}
    tail: list[str] = []

    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)

    def read_log() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "ready as " in line and not log_ready:
                log_ready.append(time.monotonic())
            found = _MODELS.search(line)
            if found:
                models_ms.update(zip(("stt", "llm", "tts"), map(float, found.groups()), strict=True))
            tail[:] = [*tail[-19:], line.rstrip()]

    reader = threading.Thread(target=read_log, name="companion-bench-log", daemon=True)
    reader.start()
    ready_at: float | None = None
    hwm = 0.0
    deadline = started + timeout_s
    ended: tuple[int, resource.struct_rusage] | None = None  # wait status, resource usage
    timed_out = False
    try:
        while ended is None:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # not proc.poll(): it would eat the rusage
            if pid:
                ended = status, usage
                break
            if time.monotonic() > deadline:
                timed_out = True
                ended = _terminate(proc.pid)
                break
            hwm = max(hwm, vm_hwm_mb(proc.pid) or 0.0)
            # keep draining: a full socket queue would block the daemon's next notification
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable and _is_ready(sock.recv(4096)) and ready_at is None:
                ready_at = time.monotonic()
        proc.returncode = os.waitstatus_to_exitcode(ended[0])
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while ready_at is None:  # it may have got ready and ended between two looks
                if _is_ready(sock.recv(4096)):
                    ready_at = time.monotonic()
    finally:
        sock.close()
        if ended is None:
            proc.kill()
            proc.wait()
    reader.join(5.0)

    ready_from = "READY=1"
    if ready_at is None and log_ready:
        ready_at, ready_from = log_ready[0], "log"
    peak = max(hwm, ended[1].ru_maxrss / 1024.0)  # ru_maxrss is in KB on Linux
    error = None
    if timed_out:
        error = f"no exit within {timeout_s:g} s"
    elif proc.returncode != 0:
        error = f"exit status {proc.returncode}: " + " | ".join(tail[-3:])
    elif ready_at is None:
        error = "it never reported being ready"
    return ColdStart(
        ready_s=None if ready_at is None else ready_at - started,
        ready_from=ready_from if ready_at is not None else "-",
        peak_rss_mb=peak or None,
        models_ms=models_ms,
        command=cmd,
        error=error,
    )
