"""What the benchmark ran on, and how busy the machine was meanwhile.

Numbers measured on a shared machine are only as good as the load allows, so a
report states the load average at start and end and how much CPU other processes
took during the run (from ``/proc/stat`` minus this process and its children).
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cores: int
    """CPUs this process may run on."""
    cpu_model: str
    ram_gb: float
    load_at_start: tuple[float, float, float]
    """1, 5 and 15 minute load averages when the benchmark started."""
    python: str
    system: str

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["load_at_start"] = [round(x, 2) for x in self.load_at_start]
        return out

    def describe(self) -> str:
        one, five, fifteen = self.load_at_start
        return (
            f"{self.cores} cores ({self.cpu_model}), {self.ram_gb:.1f} GB RAM, "
            f"load average at start {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min), "
            f"Python {self.python} on {self.system}"
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_model(cpuinfo: str | None = None) -> str:
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def ram_gb(meminfo: str | None = None) -> float:
    text = _read("/proc/meminfo") if meminfo is None else meminfo
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1024 * 1024)
    return 0.0


def describe_machine() -> Machine:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return Machine(
        cores=cores,
        cpu_model=cpu_model(),
        ram_gb=round(ram_gb(), 1),
        load_at_start=(load[0], load[1], load[2]),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
    )


def _busy_jiffies(stat: str) -> tuple[int, int] | None:
    """(busy, total) CPU jiffies from the first line of ``/proc/stat``."""
    for line in stat.splitlines():
        if line.startswith("cpu "):
            fields = [int(x) for x in line.split()[1:]]
            idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
            total = sum(fields[:8])  # guest time is already counted in user
            return total - idle, total
    return None


class LoadMeter:
    """CPU used by the whole machine and by everything except us, between start and :meth:`stop`."""

    def __init__(self) -> None:
        self._start = _busy_jiffies(_read("/proc/stat"))
        self._own = self._own_seconds()
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    @staticmethod
    def _own_seconds() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def stop(self) -> dict[str, float]:
        """``{"machine_busy_pct", "others_busy_pct", "load_1min"}``; percentages of all cores."""
        end = _busy_jiffies(_read("/proc/stat"))
        out: dict[str, float] = {}
        with contextlib.suppress(OSError):
            out["load_1min"] = round(os.getloadavg()[0], 2)
        if self._start is None or end is None or end[1] <= self._start[1]:
            return out
        busy = end[0] - self._start[0]
        total = end[1] - self._start[1]
        own = (self._own_seconds() - self._own) * self._ticks
        out["machine_busy_pct"] = round(100.0 * busy / total, 1)
        out["others_busy_pct"] = round(100.0 * max(busy - own, 0.0) / total, 1)
        return out
