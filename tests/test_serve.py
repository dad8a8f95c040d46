"""`companion serve` as a process, `companion say` against it, and the control API on the real daemon."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_control_api import LINE, ROCKY_LINE, Api, wav_info, write_setup

from companion.audio.io import read_audio
from companion.audio.sinks import FileSink
from companion.audio.sources import FileSource
from companion.config import load_config
from companion.control.client import ControlClient, DaemonNotRunning
from companion.control.daemon_backend import DaemonBackend, start_control_api
from companion.control.server import ControlServer
from companion.daemon import Daemon
from companion.persona import load_persona


def companion(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "companion", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
    }


def wait_healthy(client: ControlClient, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            client.health()
            return
        except DaemonNotRunning:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"companion serve did not come up: {proc.communicate()[1]}") from None
            time.sleep(0.05)


def stopped(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, then its log once it exits with 0; one that does not stop in 15 s is killed, its log shown."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"companion serve did not stop on SIGTERM:\n{proc.communicate()[1][-4000:]}") from None
    assert proc.returncode == 0, err[-4000:]
    return err


def test_serve_speaks_for_say_until_sigterm(tmp_path, env):
    cfg = write_setup(tmp_path)
    control = load_config(cfg).config.control
    serve = subprocess.Popen(
        [sys.executable, "-m", "companion", "serve", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_healthy(ControlClient(control), serve)
        out = tmp_path / "warm.wav"
        said = companion("say", "--config", str(cfg), "--verbose", "-o", str(out), LINE, env=env)
        assert said.returncode == 0, said.stderr
        assert said.stdout.strip() == str(out)
        assert f"Rocky: {ROCKY_LINE}" in said.stderr and "companion say: warm: said through" in said.stderr
        samples, rate = read_audio(out)
        assert rate == 22050 and len(samples) / rate > 1.0
        piped = companion("say", "--config", str(cfg), "--verbose", "-o", str(out), env=env, stdin="Are you ok?\n")
        assert piped.returncode == 0 and "Rocky: You ok, question?" in piped.stderr and "warm:" in piped.stderr
        played = companion("say", "--config", str(cfg), LINE, env=env)  # its speaker is missing
        assert played.returncode == 2
        assert played.stderr.startswith("companion: cannot play: ") and "-o FILE.wav" in played.stderr
        status = ControlClient(control).status()
        assert status["kind"] == "serve" and status["turns"] == 2
        log = stopped(serve)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert "speaking as Rocky" in log and "Traceback" not in log
    with pytest.raises(DaemonNotRunning):
        ControlClient(control).health()
    cold = companion("say", "--config", str(cfg), "--verbose", "-o", str(tmp_path / "cold.wav"), LINE, env=env)
    assert cold.returncode == 0 and "no daemon at" in cold.stderr and "cold:" in cold.stderr


def test_serve_with_the_control_api_disabled_refuses(tmp_path, env):
    cfg = write_setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("control:\n", "control:\n  enabled: false\n"))
    proc = companion("serve", "--config", str(cfg), env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith("control.enabled is false: nothing would use this server")


@pytest.fixture(scope="module")
def daemon_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("daemon-api")
    loaded = load_config(write_setup(root))
    silence = np.zeros(16000 * 300, dtype=np.int16)
    daemon = Daemon(
        loaded,
        load_persona("rocky", loaded.config.personas_dir),
        source=FileSource(silence, realtime=True),
        sink=FileSink(root / "out"),
        persona_key="rocky",
    )
    daemon.start()
    server = start_control_api(daemon)
    assert server is not None and server.running
    yield Api(loaded.config.control), daemon, root / "out"
    server.stop()
    daemon.stop()
    daemon.wait()


def test_the_daemon_answers_health_and_status(daemon_api):
    api, *_ = daemon_api
    status, health = api.json("GET", "/health")
    assert status == 200 and health == {"ok": True, "kind": "daemon", "persona": "Rocky", "ready": True}
    body = api.json("GET", "/status")[1]
    assert body["state"] in ("idle", "listening") and body["persona"] == "Rocky" and body["uptime_s"] > 0


def test_the_daemon_renders_a_wav_without_touching_the_loop(daemon_api):
    api, daemon, _ = daemon_api
    turns = daemon.status.turns
    status, headers, data = api.call("POST", "/say", json.dumps({"text": LINE, "speed": 1.5}).encode())
    assert status == 200 and wav_info(data)[1] > 0.8
    assert headers["x-companion-changed"] == "1"
    assert daemon.status.turns == turns


def test_the_daemon_plays_through_its_loop(daemon_api):
    api, daemon, out = daemon_api
    status, body = api.json("POST", "/say", {"text": LINE, "play": True})
    assert status == 200 and body["spoken"] == ROCKY_LINE and body["persona"] == "Rocky"
    deadline = time.monotonic() + 30
    while daemon.status.last_turn.get("turn") != body["turn"] and time.monotonic() < deadline:
        time.sleep(0.05)
    last = api.json("GET", "/status")[1]["last_turn"]
    assert last["spoken"] == ROCKY_LINE and last["timings_ms"]["tts_first_audio"] > 0
    assert wav_info((out / last["audio"]).read_bytes())[1] > 1.0
    status, body = api.json("POST", "/say", {"text": LINE, "play": True, "persona": "plain"})
    assert status == 409 and "companion persona use plain" in body["error"]


def test_the_daemon_swaps_persona_on_request(daemon_api):
    api, daemon, _ = daemon_api
    try:
        assert api.json("POST", "/persona", {"name": "plain"}) == (200, {"persona": "Plain", "name": "plain"})
        assert daemon.persona.name == "Plain" and api.json("GET", "/status")[1]["persona"] == "Plain"
        status, body = api.json("POST", "/persona", {"name": "nobody"})
        assert status == 400 and "no persona named 'nobody'" in body["error"]
        assert daemon.persona.name == "Plain"
    finally:
        daemon.use_persona("rocky")


def test_a_daemon_still_loading_answers_503(tmp_path):
    loaded = load_config(write_setup(tmp_path))
    daemon = Daemon(
        loaded,
        load_persona("rocky", loaded.config.personas_dir),
        source=FileSource(np.zeros(16000, dtype=np.int16)),
        sink=FileSink(tmp_path / "out"),
    )
    with ControlServer(DaemonBackend(daemon), loaded.config.control):
        api = Api(loaded.config.control)
        assert api.json("GET", "/health")[1]["ready"] is False
        assert api.json("GET", "/status")[1]["state"] == "starting"
        for play in (False, True):
            status, body = api.json("POST", "/say", {"text": "hi", "play": play})
            assert status == 503 and "still starting" in body["error"]


def test_the_say_benchmark_times_cold_and_warm_runs(tmp_path):
    from companion.control.bench import bench_say, report

    result = bench_say(runs=1, config=write_setup(tmp_path))
    for kind in ("python_start", "cli_start", "cold", "warm", "warm_lean_cli"):
        assert result[kind]["runs"] == 1 and result[kind]["median_s"] > 0
    assert result["persona"] == "rocky" and "warm say" in report(result)


# ---- on a real sound device (a private PulseAudio null sink) ----------------------------------


@pytest.fixture()
def speaker(tmp_path: Path, env: dict[str, str]):
    """A private PulseAudio server whose default speaker is a null sink; yields (env, record)."""
    if shutil.which("pulseaudio") is None or shutil.which("parec") is None:
        pytest.skip("needs pulseaudio and parec (scripts/system-deps.sh test)")
    runtime = tmp_path / "pulse-runtime"
    runtime.mkdir()
    env = {**env, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(tmp_path)}
    started = subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            "--use-pid-file=yes",
            "--load=module-null-sink sink_name=robot",
            "--load=module-native-protocol-unix",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if started.returncode != 0:
        pytest.skip(f"pulseaudio did not start: {started.stderr.strip()[-300:]}")
    subprocess.run(["pactl", "set-default-sink", "robot"], env=env, check=True, timeout=10)

    @contextlib.contextmanager
    def record(path: Path):
        with path.open("wb") as out:
            rec = subprocess.Popen(
                ["parec", "-d", "robot.monitor", "--format=s16le", "--rate=22050", "--channels=1", "--raw"],
                stdout=out,
                env=env,
            )
            try:
                time.sleep(0.3)
                yield
                time.sleep(0.3)
            finally:
                rec.terminate()
                rec.wait(timeout=10)

    yield env, record
    subprocess.run(["pulseaudio", "--kill"], env=env, timeout=10)


def voiced_seconds(raw: Path) -> float:
    audio = np.fromfile(raw, dtype=np.int16).astype(np.float32) / 32768.0
    frame = 1102  # 50 ms
    rms = [float(np.sqrt(np.mean(audio[i : i + frame] ** 2))) for i in range(0, len(audio) - frame, frame)]
    return 0.05 * sum(r > 0.01 for r in rms)


@pytest.mark.audio
def test_say_plays_on_the_default_speaker_cold_and_through_serve(tmp_path, speaker):
    env, record = speaker
    cfg = write_setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("output_device: no-such-speaker-here", "output_device: null"))
    with record(tmp_path / "cold.raw"):
        cold = companion("say", "--config", str(cfg), "--verbose", LINE, env=env)
    assert cold.returncode == 0, cold.stderr
    assert "cold:" in cold.stderr and f"Rocky: {ROCKY_LINE}" in cold.stderr
    assert voiced_seconds(tmp_path / "cold.raw") > 1.0

    serve = subprocess.Popen(
        [sys.executable, "-m", "companion", "serve", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        client = ControlClient(load_config(cfg).config.control)
        wait_healthy(client, serve)
        with record(tmp_path / "warm.raw"):
            warm = companion("say", "--config", str(cfg), "--verbose", "Good good good. " * 3, env=env)
            assert warm.returncode == 0 and "warm:" in warm.stderr, warm.stderr
            deadline = time.monotonic() + 20
            while client.status()["state"] != "idle" and time.monotonic() < deadline:
                time.sleep(0.05)
        assert voiced_seconds(tmp_path / "warm.raw") > 1.0
    finally:
        stopped(serve)


def test_a_daemon_whose_port_is_taken_runs_without_the_api(tmp_path, caplog):
    cfg = write_setup(tmp_path)
    loaded = load_config(cfg)
    daemon = Daemon(
        loaded,
        load_persona("rocky", loaded.config.personas_dir),
        source=FileSource(np.zeros(16000, dtype=np.int16)),
        sink=FileSink(tmp_path / "out"),
    )
    with ControlServer(DaemonBackend(daemon), loaded.config.control):
        assert start_control_api(daemon) is None
    assert "running without the control API" in caplog.text
    cfg.write_text(cfg.read_text().replace("control:\n", "control:\n  enabled: false\n"))
    daemon.config = load_config(cfg).config
    assert start_control_api(daemon) is None  # the port is free now: disabled means not served
    with pytest.raises(DaemonNotRunning):
        ControlClient(loaded.config.control).health()
