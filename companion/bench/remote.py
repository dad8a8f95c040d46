"""``companion bench --remote STAGE=ADDRESS`` and ``--compare-remote``: the loop on remote backends.

``--remote`` points a stage at a server (``stt=tcp://...``, ``llm=http://.../v1``,
``tts=tcp://...``). ``--compare-remote`` starts every remote on loopback (the real
wyoming-faster-whisper, llama-cpp-python's server, and ``companion serve --wyoming``
with the same persona), runs the embedded loop and the all-remote loop over the same
turns in one run, and then times the fallback: a turn with each server off (connection
refused) and hung (accepts, never answers), until the local model answered.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from companion.bench.remote_timing import Locals, measure_fallback, measure_stages
from companion.bench.report import summarise, to_json
from companion.bench.results import BenchResult
from companion.config import Config, LoadedConfig, load_config
from companion.errors import UserError
from companion.settings import ConfigError, build, to_dict

STAGES = {"stt": ("wyoming", "uri"), "llm": ("openai", "url"), "tts": ("wyoming", "uri")}
Overrides = Mapping[str, Mapping[str, object]]


def parse_remotes(specs: Sequence[str]) -> dict[str, dict[str, object]]:
    """``["stt=tcp://h:10300", "llm=http://h:8080/v1"]`` -> config overrides per section."""
    out: dict[str, dict[str, object]] = {}
    for spec in specs:
        stage, sep, address = spec.partition("=")
        if not sep or stage not in STAGES or not address:
            raise UserError(
                f"--remote {spec!r}: expected stt=tcp://HOST:PORT, llm=http://HOST:PORT/v1 or tts=tcp://..."
            )
        engine, key = STAGES[stage]
        out[stage] = {"engine": engine, key: address}
    return out


def with_overrides(loaded: LoadedConfig, overrides: Overrides) -> LoadedConfig:
    """``loaded`` with sections changed (checked like a config file; errors name '--remote')."""
    data = to_dict(loaded.config)
    for section, values in overrides.items():
        data[section] = {**data[section], **values}
    try:
        return LoadedConfig(build(Config, data, source="--remote"), loaded.path)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _serve_config(config: Config, tmp: Path) -> Path:
    """A config for the ``companion serve --wyoming`` peer: the same voices, no control API."""
    data = to_dict(config)
    data["control"] = {**data["control"], "enabled": False}
    data["state_dir"] = str(tmp / "serve-state")
    path = tmp / "serve.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_compare(options: Any, progress: Callable[[str], None]) -> dict[str, object]:
    """Embedded, then every stage remote on loopback, then the fallback times: one run, one machine."""
    from companion.bench.runner import run_bench
    from companion.llm import resolve_model
    from companion.remote import peers

    loaded = load_config(options.config)
    config = loaded.config
    progress("embedded: every stage on this process's own models")
    embedded = run_bench(replace(options, overrides={}), progress=progress)
    with tempfile.TemporaryDirectory(prefix="companion-bench-remote-") as tmp:
        progress(
            "starting the remotes on loopback: wyoming-faster-whisper, llama_cpp.server, companion serve --wyoming"
        )
        started: list[peers.Peer] = []
        try:
            started.append(peers.faster_whisper(threads=config.stt.threads))
            s, ll = config.llm, resolve_model(config.llm.model)
            started.append(peers.llama_server(ll, threads=s.threads, context=s.context_tokens))
            persona = options.persona or config.persona
            started.append(peers.companion_wyoming(_serve_config(config, Path(tmp)), persona))
            whisper, llama, voice = started
            overrides = {
                "stt": {"engine": "wyoming", "uri": whisper.address},
                "llm": {"engine": "openai", "url": llama.address, "remote_model": "smollm2"},
                "tts": {"engine": "wyoming", "uri": voice.address},
            }
            progress("remote: every stage on a loopback server (local fallbacks loaded)")
            remote = run_bench(replace(options, overrides=overrides, cold_start=False), progress=progress)
            progress("stages alone: embedded and remote requests taken in turn (A/B/A/B)")
            local = Locals.load(config, persona)
            stages = measure_stages(local, whisper.address, llama.address, voice.address, options.fixtures_dir)
        finally:
            for p in started:
                p.stop()
    progress("fallback: each stage with its server off, then hung")
    fallback = measure_fallback(config, local, options.fixtures_dir)
    return {"embedded": embedded, "remote": remote, "stages": stages, "fallback": fallback}


def compare_json(result: dict[str, object]) -> dict[str, object]:
    e, r = result["embedded"], result["remote"]
    assert isinstance(e, BenchResult) and isinstance(r, BenchResult)
    return {
        "embedded": to_json(e),
        "remote": to_json(r),
        "stages_ms": result["stages"],
        "fallback_ms": result["fallback"],
    }


def format_compare(result: dict[str, object]) -> str:
    e, r, fb = result["embedded"], result["remote"], result["fallback"]
    assert isinstance(e, BenchResult) and isinstance(r, BenchResult) and isinstance(fb, dict)
    se, sr = summarise(e), summarise(r)
    lines = [f"machine: {e.machine.get('description', '')}", "", f"{'':34s}{'embedded':>20s}{'remote (loopback)':>22s}"]

    def row(label: str, a: Any, b: Any) -> None:
        def cell(s: Any) -> str:
            return "-" if not s or s.get("median") is None else f"{s['median']:.0f} / {s['p95']:.0f}"

        lines.append(f"{label:34s}{cell(a):>20s}{cell(b):>22s}")

    lines.append(f"{'(median / p95 ms)':34s}")
    row("response latency", se["response_ms"], sr["response_ms"])
    stages_e, stages_r = se["stages_ms"], sr["stages_ms"]
    assert isinstance(stages_e, dict) and isinstance(stages_r, dict)
    for stage in ("stt", "llm_first_token", "llm_first_sentence", "tts_first_audio"):
        row(f"  {stage.replace('_', ' ')}", stages_e.get(stage), stages_r.get(stage))
    lines.append(f"{'turns answered':34s}{se['answered']!s:>20s}{sr['answered']!s:>22s}")
    me, mr = se["response_ms"], sr["response_ms"]
    assert isinstance(me, dict) and isinstance(mr, dict)
    if me.get("median") is not None and mr.get("median") is not None:
        lines.append(f"remote - embedded, median response: {mr['median'] - me['median']:+.0f} ms (target <= +50 ms)")
    st = result["stages"]
    assert isinstance(st, dict)
    lines += ["", "each stage alone, embedded and remote requests in turn (first result, median / p95 ms):"]
    for stage, pair in st.items():
        row(f"  {stage}", pair["embedded"], pair["remote"])
    lines += ["", "fallback: request -> first result from the local model (median / p95 ms of 3)"]
    lines.append(f"{'':10s}{'server off':>18s}{'server hung':>18s}{'local only':>18s}")
    for stage, faults in fb.items():
        cells = [faults.get(k) for k in ("off", "hung", "local only")]
        text = ["-" if not c else f"{c['median']:.0f} / {c['p95']:.0f}" for c in cells]
        lines.append(f"{stage:10s}" + "".join(f"{t:>18s}" for t in text))
    return "\n".join(lines)


def cmd_remote(args: Any, options: Any) -> int:
    """``companion bench --remote ...`` / ``--compare-remote`` (called by companion.cli.bench)."""
    import json
    import sys

    from companion.bench.report import format_report

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.compare_remote:
        if args.remote:
            raise UserError("--compare-remote starts its own loopback servers: drop --remote")
        result = run_compare(options, say)
        print(format_compare(result))
        data: dict[str, object] = compare_json(result)
    else:
        from companion.bench.runner import run_bench

        run = run_bench(replace(options, overrides=parse_remotes(args.remote)), progress=say)
        print(format_report(run))
        data = to_json(run)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"numbers: {args.json}")
    return 0
