"""Statistics over a benchmark run, its JSON form and its printed report."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from companion.bench.results import (
    EXTRA_HELP,
    EXTRA_STAGES,
    STAGE_HELP,
    STAGE_LABELS,
    STAGES,
    TARGETS,
    BenchResult,
    TurnResult,
)

SCHEMA = "companion-bench/1"

_CUT = re.compile(r"answered as (\d+) turns")


def cut_note(pieces: int) -> str:
    """How a turn the loop heard as several (the user was cut off) is marked in its error."""
    return f"answered as {pieces} turns"


def pieces(turn: TurnResult) -> int:
    """How many turns the loop made of this one (2+: it cut the user off mid-turn)."""
    found = _CUT.search(turn.error or "")
    return int(found.group(1)) if found else 1


def was_cut(turn: TurnResult) -> bool:
    """The user was cut off: the turn was answered in pieces, or the reply was heard before
    the user had finished (the rest of what they said was talked over, or lost)."""
    return pieces(turn) > 1 or (turn.response_ms is not None and turn.response_ms < 0)


def compare_alternate(result: BenchResult, flag: str, on: set[int]) -> list[str]:
    """Response and first-token times with ``flag`` on (turns ``on``) and off, same run, and how
    many of each half's turns cut the user off."""
    out = [f"A/B in one run, {flag} on for every second turn:"]
    for label, chosen in (("on", True), ("off", False)):
        half = [t for i, t in enumerate(result.turns) if (i in on) == chosen]
        turns = [t for t in half if t.response_ms is not None]
        resp = stats([t.response_ms for t in turns if t.response_ms is not None])
        first = stats([t.stages_ms["llm_first_token"] for t in turns if "llm_first_token" in t.stages_ms])
        out.append(
            f"  {flag} {label:3s}: response median {_ms(resp['median'])} ms, p95 {_ms(resp['p95'])} ms "
            f"(n={resp['n']}); LLM first token median {_ms(first['median'])} ms, p95 {_ms(first['p95'])} ms; "
            f"cut off {sum(was_cut(t) for t in half)} of {len(half)}"
        )
    return out


def end_of_turn(result: BenchResult) -> dict[str, object]:
    """The end-of-turn decision on its own: how long it waited after the true end of speech
    (answered turns not cut), and how many turns it cut off (ended inside a pause)."""
    cut = [t for t in result.turns if was_cut(t)]
    waits = [t.stages_ms["vad_wait"] for t in result.turns if "vad_wait" in t.stages_ms and not was_cut(t)]
    return {
        "policy": result.setup.get("end_of_turn"),
        "wait_ms": stats(waits),
        "cut_turns": len(cut),
        "turns": len(result.turns),
        "cut_rate": round(len(cut) / len(result.turns), 3) if result.turns else None,
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks (numpy's default method).

    ``percentile([1, 2, 3, 4], 50) == 2.5``; ``percentile([0, 10], 95) == 9.5``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, median, p95, mean, min, max (None when there are no values)."""
    if not values:
        return {"n": 0, "median": None, "p95": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(values),
        "median": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "mean": round(sum(values) / len(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def summarise(result: BenchResult) -> dict[str, object]:
    answered = [t for t in result.turns if t.response_ms is not None]
    response = [t.response_ms for t in answered if t.response_ms is not None]
    stages = {}
    for stage in (*STAGES, *EXTRA_STAGES):
        stages[stage] = stats([t.stages_ms[stage] for t in answered if stage in t.stages_ms])
    share = {}
    total = sum(float(stages[s]["mean"] or 0.0) for s in STAGES)
    for s in STAGES:
        share[s] = round(100.0 * float(stages[s]["mean"] or 0.0) / total, 1) if total > 0 else None
    return {
        "turns": len(result.turns),
        "answered": len(answered),
        "response_ms": stats(response),
        "stages_ms": stages,
        "stage_share_pct": share,
        "end_of_turn": end_of_turn(result),
    }


def verdicts(summary: dict[str, object], result: BenchResult) -> dict[str, dict[str, object]]:
    """Each target: the measured value, the target, and whether it was met (None: not measured)."""
    response = summary["response_ms"]
    assert isinstance(response, dict)
    cold = result.cold_start
    measured: dict[str, float | None] = {
        "response_median_ms": response["median"],
        "response_p95_ms": response["p95"],
        "cold_start_s": None if cold is None else cold.ready_s,
        "peak_rss_mb": None if cold is None else cold.peak_rss_mb,
    }
    out: dict[str, dict[str, object]] = {}
    for key, target in TARGETS.items():
        value = measured[key]
        out[key] = {"value": value, "target": target, "met": None if value is None else value <= target}
    return out


def to_json(result: BenchResult) -> dict[str, object]:
    summary = summarise(result)
    return {
        "schema": SCHEMA,
        "machine": result.machine,
        "load": result.load,
        "models": result.models,
        "setup": result.setup,
        "duration_s": round(result.duration_s, 1),
        "summary": summary,
        "targets": verdicts(summary, result),
        "cold_start": None if result.cold_start is None else result.cold_start.as_json(),
        "turns": [t.as_json() for t in result.turns],
    }


def _ms(value: object) -> str:
    return "-" if value is None else f"{float(value):.0f}"  # type: ignore[arg-type]


def format_report(result: BenchResult) -> str:
    """The human-readable report printed at the end of ``companion bench``."""
    data = to_json(result)
    summary = data["summary"]
    assert isinstance(summary, dict)
    lines = [f"machine: {result.machine.get('description', '')}"]
    load = result.load
    if load:
        parts = [f"load average at end {load['load_1min']:.2f}" if "load_1min" in load else ""]
        if "others_busy_pct" in load:
            parts.append(
                f"CPU busy {load['machine_busy_pct']:.0f}% of all cores during the run, "
                f"{load['others_busy_pct']:.0f}% by other processes"
            )
        lines.append("load:    " + "; ".join(p for p in parts if p))
    lines.append("models:  " + "; ".join(f"{k} {v}" for k, v in result.models.items() if k != "files"))
    lines.append("setup:   " + ", ".join(f"{k} {v}" for k, v in result.setup.items()))
    lines.append("")
    lines.append(f"{'turn':28s} {'response':>8s}  " + " ".join(f"{s[:10]:>10s}" for s in STAGES))
    for t in result.turns:
        name = f"{t.fixture}#{t.index}"
        row = " ".join(f"{_ms(t.stages_ms.get(s)):>10s}" for s in STAGES)
        note = "" if t.answered else f"  not answered{': ' + t.error if t.error else ''}"
        lines.append(f"{name[:28]:28s} {_ms(t.response_ms):>8s}  {row}{note}")
    lines.append("")
    response = summary["response_ms"]
    stages = summary["stages_ms"]
    share = summary["stage_share_pct"]
    assert isinstance(response, dict) and isinstance(stages, dict) and isinstance(share, dict)
    lines.append(
        f"response latency (first reply sample at the device - true end of speech), "
        f"n={response['n']} of {summary['turns']} turns:"
    )
    lines.append(
        f"  median {_ms(response['median'])} ms, p95 {_ms(response['p95'])} ms, "
        f"min {_ms(response['min'])} ms, max {_ms(response['max'])} ms"
    )
    lines.append("per stage (ms):           median      p95   share of mean")
    for s in (*STAGES, *EXTRA_STAGES):
        st = stages[s]
        pct = f"{share[s]:5.1f}%" if share.get(s) is not None else ""
        label = STAGE_LABELS.get(s, s.replace("_", " "))
        lines.append(
            f"  {label:22s} {_ms(st['median']):>8s} {_ms(st['p95']):>8s}   {pct:>6s}  "
            f"{STAGE_HELP.get(s) or EXTRA_HELP.get(s, '')}"
        )
    alternate = result.setup.get("alternate")
    if isinstance(alternate, dict):
        lines += compare_alternate(result, str(alternate["flag"]), set(alternate["on"]))
    eot = summary["end_of_turn"]
    assert isinstance(eot, dict)
    wait = eot["wait_ms"]
    lines.append(
        f"end of turn ({eot['policy'] or '?'}): waited median {_ms(wait['median'])} ms, p95 {_ms(wait['p95'])} ms "
        f"after the true end of speech (n={wait['n']}); cut the user off in {eot['cut_turns']} of {eot['turns']} turns"
    )
    cold = result.cold_start
    if cold is not None:
        if cold.error:
            lines.append(f"cold start: failed: {cold.error}")
        else:
            ready = "-" if cold.ready_s is None else f"{cold.ready_s:.2f} s"
            rss = "-" if cold.peak_rss_mb is None else f"{cold.peak_rss_mb:.0f} MB"
            loads = ", ".join(f"{k} {v:.0f} ms" for k, v in cold.models_ms.items())
            lines.append(
                f"cold start: {ready} to listening (seen by {cold.ready_from}); "
                f"peak RSS {rss}{'; model loads: ' + loads if loads else ''}"
            )
    lines.append("targets:")
    targets = data["targets"]
    assert isinstance(targets, dict)
    for key, v in targets.items():
        met = {True: "met", False: "MISSED", None: "not measured"}[v["met"]]
        value = "-" if v["value"] is None else f"{v['value']:.2f}".rstrip("0").rstrip(".")
        lines.append(f"  {key:20s} {value:>8s}  (target <= {v['target']:g})  {met}")
    return "\n".join(lines)
