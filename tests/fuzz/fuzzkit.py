"""Helpers of the fuzz suite: the per-input time and memory meter, and a WAV header builder."""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
SECONDS = 2.0
"""Each input is answered within this."""
EXTRA_MB = 200.0
"""...and with at most this much extra peak RSS."""


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


class Budget:
    seconds = SECONDS
    """An answer that is real work (a WAV of many seconds) may raise this, e.g. to half its audio's length."""


class Meter:
    """Time and peak RSS (VmHWM, reset before each input) of one input, against the limits."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.worst_mb = 0.0
        self.inputs = 0

    @contextmanager
    def measure(self, what: object) -> Iterator[Budget]:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # resets the peak RSS to the current RSS
        except OSError:
            pass
        before = rss_mb()
        started = time.monotonic()
        budget = Budget()
        yield budget
        took = time.monotonic() - started
        extra = rss_mb("VmHWM") - before
        self.inputs += 1
        self.worst_s, self.worst_mb = max(self.worst_s, took), max(self.worst_mb, extra)
        shown = repr(what)[:200]
        assert took < budget.seconds, f"{shown} took {took:.2f} s (limit {budget.seconds:.1f} s)"
        assert extra < EXTRA_MB, f"{shown} took {extra:.0f} MB of extra RSS (limit {EXTRA_MB} MB)"


class ErrorLog(logging.Handler):
    """Collects ERROR records (a traceback in the log) from the companion loggers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def one_line(error: str) -> None:
    assert error and "\n" not in error and "Traceback" not in error, error
    assert len(error) < 1000, f"a {len(error)}-character error"


def wav_bytes(
    *, tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16, data: bytes = b"\0\0" * 160,
    data_size: int | None = None, riff_size: int | None = None, block_align: int | None = None, extra: bytes = b"",
) -> bytes:  # fmt: skip
    """A RIFF/WAVE file with every header field settable (wrong ones too)."""
    align = block_align if block_align is not None else max(channels * bits // 8, 0) % 65536
    fmt = struct.pack(
        "<HHIIHH", tag % 65536, channels % 65536, rate % 2**32, (rate * align) % 2**32, align, bits % 65536
    )
    fmt += extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", (len(data) if data_size is None else data_size) % 2**32) + data
    return b"RIFF" + struct.pack("<I", (len(body) if riff_size is None else riff_size) % 2**32) + body
