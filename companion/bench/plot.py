"""Where the time goes: one stacked bar per turn, stages bottom to top, and the response target.

Needs matplotlib (``pip install 'companion[bench]'``); drawn with the Agg backend, so
no display is needed.
"""

from __future__ import annotations

from pathlib import Path

from companion.bench.report import summarise
from companion.bench.results import STAGE_LABELS, STAGES, TARGETS, BenchResult
from companion.errors import UserError

COLOURS = {
    "vad_wait": "#8da0cb",
    "stt": "#66c2a5",
    "llm_first_sentence": "#fc8d62",
    "tts_first_audio": "#e78ac3",
    "playback_start": "#a6d854",
}


def plot_turns(result: BenchResult, path: Path) -> Path:
    """Draw the per-turn breakdown to ``path`` (PNG); returns the path."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'companion[bench]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = [t for t in result.turns if t.answered]
    if not turns:
        raise UserError("nothing to plot: no turn was answered")
    labels = [f"{t.fixture.removesuffix('.wav')}#{t.index}" for t in turns]
    x = range(len(turns))
    width = max(6.0, 0.42 * len(turns) + 2.5)
    fig, ax = plt.subplots(figsize=(width, 4.8), dpi=110)
    bottom = [0.0] * len(turns)
    bars = []
    for stage in STAGES:
        heights = [t.stages_ms.get(stage, 0.0) / 1000.0 for t in turns]
        bars.append(ax.bar(x, heights, bottom=bottom, width=0.7, label=STAGE_LABELS[stage], color=COLOURS[stage]))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    target = TARGETS["response_median_ms"] / 1000.0
    line = ax.axhline(target, color="#d62728", linestyle="--", linewidth=1.2, label=f"target {target:g} s")
    summary = summarise(result)["response_ms"]
    assert isinstance(summary, dict)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("seconds after the user stopped speaking")
    ax.set_ylim(0, max(max(bottom), target) * 1.15)
    load = result.load.get("load_1min")
    cores = result.machine.get("cores")
    ax.set_title(
        f"Response latency by stage: median {summary['median'] / 1000:.2f} s, "
        f"p95 {summary['p95'] / 1000:.2f} s (n={summary['n']})"
        + (f"\n{cores} cores, load average {load:.1f} at end" if load is not None else ""),
        fontsize=10,
    )
    ax.legend(
        [*reversed(bars), line],  # stages listed top to bottom, as stacked
        [*(STAGE_LABELS[s] for s in reversed(STAGES)), f"target {target:g} s"],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
