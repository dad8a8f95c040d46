"""Start the real servers others wrote, on loopback, for tests and ``companion bench --compare-remote``.

- STT: ``wyoming-faster-whisper`` on the bundled tiny.en directory (never downloads);
- TTS: ``wyoming-piper`` with the bundled joe voice files, or ``companion serve --wyoming``;
- LLM: llama-cpp-python's own OpenAI-compatible server on the bundled SmolLM2.

Each is a child process on a free 127.0.0.1 port; :meth:`Peer.stop` ends it (and the
context manager does). Nothing here listens anywhere but loopback.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from companion.remote.health import RemoteError

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Peer:
    name: str
    address: str
    """tcp://127.0.0.1:PORT (Wyoming) or http://127.0.0.1:PORT/v1 (OpenAI)."""
    process: subprocess.Popen[bytes]
    log: Path
    tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1].split("/")[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _spawn(
    name: str,
    argv: list[str],
    address: str,
    env: dict[str, str] | None = None,
    tmp: tempfile.TemporaryDirectory[str] | None = None,
) -> Peer:
    tmp = tmp or tempfile.TemporaryDirectory(prefix=f"companion-peer-{name}-")
    log = Path(tmp.name) / "log.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
    return Peer(name, address, proc, log, tmp)


def wait_ready(peer: Peer, timeout: float = 60.0) -> Peer:
    """Poll until the server answers (Wyoming ``describe`` or ``GET /v1/models``); RemoteError if it dies."""
    from companion.remote.wyoming_io import describe

    deadline = time.monotonic() + timeout
    while True:
        if peer.process.poll() is not None:
            raise RemoteError(f"{peer.name} exited with {peer.process.returncode}:\n{peer.log_tail()}")
        try:
            if peer.address.startswith("tcp://"):
                describe(peer.address, connect_timeout=0.5, timeout=2.0)
            else:
                conn = http.client.HTTPConnection(HOST, peer.port, timeout=2.0)
                try:
                    conn.request("GET", "/v1/models")
                    if conn.getresponse().status not in (200, 401):  # 401: up, and wants its key
                        raise RemoteError("not ready")
                finally:
                    conn.close()
            return peer
        except (RemoteError, OSError):
            if time.monotonic() > deadline:
                peer.stop()
                raise RemoteError(f"{peer.name} not ready in {timeout:g} s:\n{peer.log_tail()}") from None
            time.sleep(0.2)


def faster_whisper(*, port: int | None = None, threads: int = 2) -> Peer:
    """wyoming-faster-whisper on the bundled tiny.en, greedy and int8 like the embedded STT."""
    from companion.stt import resolve_model

    port = port or free_port()
    tmp = tempfile.TemporaryDirectory(prefix="companion-peer-fw-")
    argv = [sys.executable, "-m", "wyoming_faster_whisper", "--uri", f"tcp://{HOST}:{port}"]
    argv += ["--model", resolve_model("default"), "--data-dir", tmp.name, "--local-files-only"]
    argv += ["--stt-library", "faster-whisper", "--language", "en", "--beam-size", "1"]
    argv += ["--compute-type", "int8", "--cpu-threads", str(threads)]
    env = {"HF_HUB_OFFLINE": "1"}
    return wait_ready(_spawn("wyoming-faster-whisper", argv, f"tcp://{HOST}:{port}", env, tmp))


def piper() -> Peer:
    """wyoming-piper with the bundled en_US-joe-medium files as its one local voice."""
    from companion.tts.piper import default_voice

    model, config = default_voice()
    address = f"tcp://{HOST}:{free_port()}"
    tmp = tempfile.TemporaryDirectory(prefix="companion-peer-piper-")
    data = Path(tmp.name) / "voices"
    data.mkdir()
    (data / "en_US-joe-medium.onnx").symlink_to(model)
    (data / "en_US-joe-medium.onnx.json").symlink_to(config)
    argv = [sys.executable, "-m", "wyoming_piper", "--uri", address, "--voice", "en_US-joe-medium"]
    argv += ["--data-dir", str(data)]
    return wait_ready(_spawn("wyoming-piper", argv, address, tmp=tmp))


def llama_server(
    model: Path | None = None, *, threads: int = 2, context: int = 2048, api_key: str | None = None
) -> Peer:
    """llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on the bundled SmolLM2."""
    from companion.llm import resolve_model

    port = free_port()
    gguf = model or resolve_model("default")
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", HOST, "--port", str(port)]
    argv += ["--n_ctx", str(context), "--n_threads", str(threads), "--n_threads_batch", str(threads)]
    argv += ["--model_alias", "smollm2", "--verbose", "False"]
    if api_key:
        argv += ["--api_key", api_key]
    return wait_ready(_spawn("llama-cpp-server", argv, f"http://{HOST}:{port}/v1"))


def companion_wyoming(config: Path | None = None, persona: str | None = None, *, zeroconf: bool = False) -> Peer:
    """``companion serve --wyoming`` in a new process (control API off unless the config turns it on)."""
    port = free_port()
    argv = [sys.executable, "-m", "companion", "serve", "--wyoming", f"tcp://{HOST}:{port}"]
    if config is not None:
        argv += ["--config", str(config)]
    if persona is not None:
        argv += ["--persona", persona]
    if zeroconf:
        argv += ["--zeroconf"]
    return wait_ready(_spawn("companion-serve-wyoming", argv, f"tcp://{HOST}:{port}"))
