"""Progress lines for long jobs (decoding a film, transcribing hundreds of segments)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Prints ``what: 42% (detail)`` at most every ``every_s`` seconds, and always at 100%."""

    def __init__(
        self,
        what: str,
        total: float,
        *,
        stream: TextIO | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.total = max(total, 1e-9)
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self._clock = clock
        self._last = clock()
        self._done = False

    def update(self, done: float, detail: str = "") -> None:
        if self._done:
            return
        now = self._clock()
        finished = done >= self.total
        if not finished and now - self._last < self.every_s:
            return
        self._last = now
        self._done = finished
        pct = min(100.0, 100.0 * done / self.total)
        print(f"{self.what}: {pct:3.0f}%" + (f" ({detail})" if detail else ""), file=self.stream, flush=True)


def clock_time(seconds: float) -> str:
    """``HH:MM:SS`` for a position in a source."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def parse_range(text: str) -> tuple[float, float]:
    """``HH:MM:SS-HH:MM:SS`` (also ``MM:SS`` or seconds, fractions allowed) -> (start, end) in seconds."""
    from companion.errors import UserError

    def one(part: str) -> float:
        pieces = part.strip().split(":")
        if not 1 <= len(pieces) <= 3:
            raise ValueError(part)
        value = 0.0
        for piece in pieces:
            value = value * 60 + float(piece)
        return value

    try:
        start_text, end_text = text.split("-", 1)
        start, end = one(start_text), one(end_text)
    except ValueError:
        raise UserError(f"--range {text!r}: expected HH:MM:SS-HH:MM:SS") from None
    if end <= start:
        raise UserError(f"--range {text!r}: the end must come after the start")
    return start, end
