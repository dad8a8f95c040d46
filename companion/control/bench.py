"""Benchmark of ``companion say``: cold (no daemon) vs warm (through ``companion serve``).

Each run is a fresh process, ``companion say -o x.wav TEXT``, timed from process
start until the file is written: what a user waits for. The benchmark uses its own
config (the given one with the control API moved to a free loopback port), so a
daemon already running on this machine is neither used nor disturbed.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from companion.config import load_config
from companion.control.client import ControlClient, DaemonNotRunning
from companion.control.settings import ControlSettings
from companion.errors import UserError
from companion.persona import load_persona
from companion.settings import ConfigError, read_yaml

BENCH_PERSONA = """\
name: Bench
system_prompt: You are a test voice.
"""


LEAN_CLI = """\
import argparse, sys
from companion.cli import setup_logging
import companion.cli.say as say
p = argparse.ArgumentParser(prog="companion")
p.add_argument("-v", "--verbose", action="store_true")
p.add_argument("-q", "--quiet", action="store_true")
say.register(p.add_subparsers())
a = p.parse_args()
setup_logging(a.verbose, a.quiet)
sys.exit(a.func(a))
"""
"""The ``companion`` CLI with only the ``say`` module registered: what a lazily built parser would cost."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def companion_command() -> list[str]:
    """How a user starts companion: the console script beside this Python, else ``python -m companion``."""
    script = Path(sys.executable).with_name("companion")
    return [str(script)] if script.exists() else [sys.executable, "-m", "companion"]


def _stats(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]  # nearest rank
    return {
        "runs": len(times),
        "median_s": round(statistics.median(times), 4),
        "p95_s": round(p95, 4),
        "min_s": round(ordered[0], 4),
        "max_s": round(ordered[-1], 4),
        "all_s": [round(t, 4) for t in times],
    }


def _bench_config(work: Path, config: Path | None, persona: str | None) -> tuple[Path, str, ControlSettings]:
    loaded = load_config(config)
    data = read_yaml(loaded.path) if loaded.path.exists() else {}
    data = dict(data or {})
    port = free_port()
    data["control"] = {**dict(data.get("control") or {}), "enabled": True, "host": "127.0.0.1", "port": port}
    data["control"].pop("socket", None)
    key = persona or loaded.config.persona
    try:
        load_persona(key, loaded.config.personas_dir)
    except ConfigError:
        (work / "personas").mkdir()
        (work / "personas" / "bench.yaml").write_text(BENCH_PERSONA, encoding="utf-8")
        data["personas_dir"] = str(work / "personas")
        key = "bench"
    data["persona"] = key
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path, key, load_config(path).config.control


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    return time.perf_counter() - t, proc


def _say_runs(
    base: list[str], cfg: Path, text: str, runs: int, out: Path, expect: str, env: dict[str, str]
) -> list[float]:
    times = []
    for i in range(runs):
        wav = out / f"{expect}-{i}.wav"
        took, proc = _timed([*base, "say", "--config", str(cfg), "--verbose", "-o", str(wav), text], env)
        if proc.returncode != 0 or not wav.exists():
            raise UserError(f"say-bench: companion say failed: {proc.stderr.strip().splitlines()[-1:]}")
        if f"{expect}:" not in proc.stderr:
            raise UserError(f"say-bench: expected a {expect} run, got: {proc.stderr.strip()}")
        times.append(took)
    return times


def bench_say(
    *,
    runs: int = 7,
    text: str = "Hello, how are you doing today?",
    config: Path | None = None,
    persona: str | None = None,
) -> dict[str, Any]:
    base = companion_command()
    env = dict(os.environ)
    work = Path(tempfile.mkdtemp(prefix="companion-say-bench-"))
    server: subprocess.Popen[str] | None = None
    load_before = os.getloadavg()
    try:
        cfg, key, control = _bench_config(work, config, persona)
        baseline = [_timed([sys.executable, "-c", "pass"], env)[0] for _ in range(runs)]
        cli = [_timed([*base, "--version"], env)[0] for _ in range(runs)]
        cold = _say_runs(base, cfg, text, runs, work, "cold", env)

        t = time.perf_counter()
        server = subprocess.Popen(
            [*base, "serve", "--config", str(cfg)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        client = ControlClient(control)
        deadline = time.monotonic() + 120
        while True:
            try:
                client.health()
                break
            except DaemonNotRunning:
                if server.poll() is not None or time.monotonic() > deadline:
                    err = server.stderr.read() if server.stderr else ""
                    raise UserError(f"say-bench: companion serve did not start: {err.strip()[-500:]}") from None
                time.sleep(0.05)
        serve_ready = time.perf_counter() - t
        warm = _say_runs(base, cfg, text, runs, work, "warm", env)
        lean = _say_runs([sys.executable, "-c", LEAN_CLI], cfg, text, runs, work, "warm", env)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "text": text,
        "persona": key,
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        },
        "python_start": _stats(baseline),
        "cli_start": _stats(cli),
        "cold": _stats(cold),
        "serve_ready_s": round(serve_ready, 3),
        "warm": _stats(warm),
        "warm_lean_cli": _stats(lean),
    }


def report(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"companion say -o x.wav {result['text']!r} (persona {result['persona']}; "
        f"{m['cpus']} CPUs, load {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after)",
        f"{'':14s}{'median':>9s}{'p95':>9s}{'min':>9s}{'max':>9s}",
    ]
    for name, label in (
        ("python_start", "python -c pass"),
        ("cli_start", "companion -V"),
        ("cold", "cold say"),
        ("warm", "warm say"),
        ("warm_lean_cli", "warm, lean CLI"),
    ):
        s = result[name]
        cols = "".join(f"{s[k]:8.3f}s" for k in ("median_s", "p95_s", "min_s", "max_s"))
        lines.append(f"{label:14s}{cols}  ({s['runs']} runs)")
    lines.append(f"companion serve ready after {result['serve_ready_s']:.2f} s")
    return "\n".join(lines)
