"""The daemon's lifecycle with the real models: persona swaps, reloads, watchdog, signals."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from fixtures.fixtures import fixture_path

from companion.audio.sinks import FileSink
from companion.audio.sources import FileSource
from companion.config import load_config
from companion.daemon import Daemon
from companion.persona import SHIPPED_DIR, load_persona
from companion.sdnotify import Notifier


@pytest.fixture(scope="module")
def notify_socket(tmp_path_factory):
    path = tmp_path_factory.mktemp("notify") / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    yield path, sock
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out += sock.recv(4096).decode().splitlines()
        except TimeoutError:
            return out


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, notify_socket):
    root = tmp_path_factory.mktemp("daemon")
    personas = root / "personas"
    shutil.copytree(SHIPPED_DIR, personas)
    cfg = root / "config.yaml"
    cfg.write_text(f"persona: default\npersonas_dir: {personas}\nstate_dir: {root / 'state'}\n", encoding="utf-8")
    silence = np.zeros(16000 * 600, dtype=np.int16)  # ten quiet minutes
    d = Daemon(
        load_config(cfg),
        load_persona("default", personas),
        source=FileSource(silence, realtime=True),
        sink=FileSink(root / "out"),
        config_arg=cfg,
        notifier=Notifier({"NOTIFY_SOCKET": str(notify_socket[0])}),
        conversation_log=True,
    )
    d.start()
    yield d, personas
    d.stop()
    d.wait()


def test_ready_is_sent_once_models_are_loaded(daemon, notify_socket):
    messages = drain(notify_socket[1])
    assert "READY=1" in messages


def test_a_persona_swap_keeps_the_speech_and_language_models(daemon):
    d, _ = daemon
    stt, chat = d.models.stt, d.models.chat
    t = time.perf_counter()
    persona = d.use_persona("rocky")
    took = time.perf_counter() - t
    assert persona.name == "Rocky" and d.persona.name == "Rocky"
    assert d.loop.stt is stt and d.loop.chat is chat
    print(f"persona swap took {took * 1000:.0f} ms")
    d.use_persona("default")


def test_a_bad_persona_is_rejected_and_the_old_one_kept(daemon, tmp_path):
    d, personas = daemon
    (personas / "broken.yaml").write_text(
        "name: Broken\nsystem_prompt: x\nstyle:\n  tripple: [good]\n", encoding="utf-8"
    )
    from companion.settings import ConfigError

    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        d.use_persona("broken")
    assert d.persona.name == "Companion"


def test_sighup_reload_takes_an_edited_persona_and_rejects_a_broken_one(daemon, notify_socket):
    d, personas = daemon
    path = personas / "default.yaml"
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original.replace("name: Companion", "name: Buddy"), encoding="utf-8")
        assert d.reload() is True
        assert d.persona.name == "Buddy"
        path.write_text(original + "\nnot_a_key: 1\n", encoding="utf-8")
        assert d.reload() is False
        assert d.persona.name == "Buddy"
        messages = drain(notify_socket[1])
        assert "RELOADING=1" in messages and any(m.startswith("STATUS=reload rejected") for m in messages)
    finally:
        path.write_text(original, encoding="utf-8")
        d.reload()


def test_a_healthy_loop_feeds_the_watchdog(daemon, notify_socket):
    d, _ = daemon
    drain(notify_socket[1])
    assert d.check_health() is True
    assert "WATCHDOG=1" in drain(notify_socket[1])


def test_sigterm_stops_the_daemon_cleanly_within_3_seconds(tmp_path):
    sock_path = tmp_path / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "companion", "run", "--input", str(fixture_path("session_1.wav")),
         "--output-dir", str(tmp_path / "out")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        while "READY=1" not in sock.recv(4096).decode():
            pass
        time.sleep(2.5)  # mid-first-turn: the user is speaking
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        took = time.monotonic() - t
    finally:
        proc.kill()
        sock.close()
    _, err = proc.communicate()
    assert code == 0, err[-2000:]
    assert took < 3.0, f"took {took:.2f} s to stop"
    assert "Traceback" not in err
