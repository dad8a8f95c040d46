"""``companion bench --soak N``: N turns through one daemon, and whether its memory keeps growing.

The recorded turns are spoken into the real daemon over and over (cycling the
fixtures) until N turns have been answered. After each turn the process's RSS is
noted; the report gives RSS per turn, where it plateaus, and the slope in MB per
100 turns after the warm-up (a least-squares line through the later turns), plus
every failed turn. Target: a slope under :data:`TARGET_SLOPE_MB` after warm-up.

``fast`` feeds the turns without pacing them by the clock (each turn still waits
for the robot to answer, as ``run --input --fast`` does); otherwise they are
spoken in real time like ``companion bench``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.bench.machine import describe_machine
from companion.bench.session import PacedSession, Segment, load_room, load_segments, loopable
from companion.config import load_config
from companion.messages import Event, State, TurnFinished

_log = logging.getLogger(__name__)

TARGET_SLOPE_MB = 1.0
"""MB per 100 turns after warm-up that counts as flat."""
_GAP_S = 1.5
"""Room tone between turns in fast mode (ends the turn: longer than vad.end_silence_ms)."""


@dataclass(frozen=True)
class SoakOptions:
    fixtures_dir: Path
    turns: int
    warmup: int | None = None
    """Turns left out of the slope (default: a fifth of them, at least 10)."""
    fast: bool = False
    names: tuple[str, ...] = ()
    config: Path | None = None
    persona: str | None = None

    @property
    def warmup_turns(self) -> int:
        if self.warmup is not None:
            return min(self.warmup, max(self.turns - 2, 0))
        return min(max(self.turns // 5, 10), max(self.turns - 2, 0))


@dataclass
class SoakResult:
    turns: int
    warmup: int
    fast: bool
    rss_mb: list[float] = field(default_factory=list)
    """RSS of the process after each answered turn."""
    failed: list[tuple[int, str]] = field(default_factory=list)
    """(turn, what went wrong) for each turn that failed."""
    start_rss_mb: float = 0.0
    """RSS once the models were loaded, before the first turn."""
    duration_s: float = 0.0
    machine: dict[str, object] = field(default_factory=dict)

    @property
    def slope_mb_per_100(self) -> float | None:
        """Least-squares growth after the warm-up, in MB per 100 turns (None with too few turns)."""
        later = self.rss_mb[self.warmup :]
        if len(later) < 2:
            return None
        x = np.arange(len(later), dtype=np.float64)
        return float(np.polyfit(x, np.asarray(later, dtype=np.float64), 1)[0] * 100.0)

    def as_json(self) -> dict[str, object]:
        return {
            "turns": self.turns,
            "answered": len(self.rss_mb),
            "warmup": self.warmup,
            "fast": self.fast,
            "start_rss_mb": round(self.start_rss_mb, 1),
            "rss_mb": [round(v, 1) for v in self.rss_mb],
            "slope_mb_per_100_turns": None if self.slope_mb_per_100 is None else round(self.slope_mb_per_100, 2),
            "target_slope_mb_per_100_turns": TARGET_SLOPE_MB,
            "failed": [{"turn": t, "error": e} for t, e in self.failed],
            "duration_s": round(self.duration_s, 1),
            "machine": self.machine,
        }


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0  # pragma: no cover - not Linux


def soak_audio(segments: list[Segment], turns: int, room: np.ndarray | None, rate: int = 16000) -> np.ndarray:
    """One recording of ``turns`` turns (the segments cycled), each followed by room tone."""
    if room is None or len(room) < rate:
        rng = np.random.default_rng(0)
        room = np.clip(rng.normal(0.0, 32768.0 * 10 ** (-65.0 / 20.0), 10 * rate), -32768, 32767).astype(np.int16)
    tone = loopable(np.asarray(room, dtype=np.int16), rate // 10)
    gap = np.resize(tone, int(_GAP_S * rate))
    parts = [np.resize(tone, rate)]
    for i in range(turns):
        parts += [segments[i % len(segments)].samples, gap]
    return np.concatenate(parts).astype(np.int16)


class _Turns:
    """Notes RSS (and failures) after each answered turn, with progress every 10 turns."""

    def __init__(self, wanted: int, result: SoakResult, progress: Callable[[str], None]) -> None:
        self.wanted, self.result, self.progress = wanted, result, progress
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, TurnFinished) or not event.record.heard:
            return
        with self._lock:
            r = self.result
            r.rss_mb.append(rss_mb())
            n = len(r.rss_mb)
            if event.record.error:
                r.failed.append((n, str(event.record.error)))
            elif not event.record.spoken.strip():
                r.failed.append((n, "no reply"))
            if n % 10 == 0 or n == self.wanted:
                self.progress(f"turn {n}/{self.wanted}: RSS {r.rss_mb[-1]:.0f} MB")


def run_soak(options: SoakOptions, progress: Callable[[str], None] | None = None) -> SoakResult:
    from companion.app import load_persona_for
    from companion.audio.sinks import FileSink
    from companion.audio.sources import FileSource
    from companion.daemon import Daemon
    from companion.sdnotify import Notifier
    from companion.stages import AudioSource

    say = progress or (lambda _msg: None)
    started = time.monotonic()
    loaded = load_config(options.config)
    config = loaded.config
    persona = load_persona_for(config, options.persona)
    segments = load_segments(options.fixtures_dir, options.names)
    result = SoakResult(options.turns, options.warmup_turns, options.fast, machine=describe_machine().as_json())
    source: AudioSource
    if options.fast:
        audio = soak_audio(segments, options.turns, load_room(options.fixtures_dir))
        source = FileSource(audio, block_ms=config.audio.block_ms, realtime=False)
    else:
        cycled = [segments[i % len(segments)] for i in range(options.turns)]
        source = PacedSession(cycled, room=load_room(options.fixtures_dir), block_ms=config.audio.block_ms)
    turns = _Turns(options.turns, result, say)
    with tempfile.TemporaryDirectory(prefix="companion-soak-") as tmp:
        daemon = Daemon(
            loaded,
            persona,
            source=source,
            sink=FileSink(Path(tmp)),
            config_arg=options.config,
            notifier=Notifier(env={}),
            persona_key=options.persona or config.persona,
            conversation_log=False,
        )
        daemon.bus.subscribe(turns)
        say(f"loading models; then {options.turns} turns ({'fast' if options.fast else 'real time'})")
        try:
            loop = daemon.start()
            result.start_rss_mb = rss_mb()
            if isinstance(source, PacedSession):
                source.idle = lambda: loop.state in (State.IDLE, State.LISTENING)
            daemon.wait()  # until the recording has been spoken and answered
        finally:
            daemon.stop()
    missing = options.turns - len(result.rss_mb)
    if missing > 0:
        result.failed.append((len(result.rss_mb) + 1, f"{missing} turn(s) never answered (heard as fewer turns)"))
    result.duration_s = time.monotonic() - started
    return result


def format_soak(result: SoakResult) -> str:
    rss = result.rss_mb
    if not rss:
        return "soak: no turn was answered"
    slope = result.slope_mb_per_100
    at = min(result.warmup, len(rss) - 1)
    lines = [
        f"soak: {len(rss)}/{result.turns} turns ({'fast' if result.fast else 'real time'}) "
        f"in {result.duration_s:.0f} s",
        f"  RSS: {result.start_rss_mb:.0f} MB loaded, {rss[0]:.0f} MB after turn 1, "
        f"{rss[at]:.0f} MB after the warm-up (turn {at + 1}), {rss[-1]:.0f} MB at the end, max {max(rss):.0f} MB",
    ]
    if slope is None:
        lines.append("  slope: too few turns after the warm-up")
    else:
        verdict = "flat" if abs(slope) < TARGET_SLOPE_MB else "GROWING" if slope > 0 else "shrinking"
        lines.append(f"  slope after warm-up: {slope:+.2f} MB per 100 turns ({verdict}; target < {TARGET_SLOPE_MB:g})")
    step = max(len(rss) // 10, 1)
    lines.append("  RSS per turn: " + ", ".join(f"{i + 1}: {rss[i]:.0f}" for i in range(0, len(rss), step)))
    lines.append(f"  failed turns: {len(result.failed)}")
    lines += [f"    turn {t}: {e}" for t, e in result.failed[:20]]
    return "\n".join(lines)
