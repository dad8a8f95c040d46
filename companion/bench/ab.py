"""A/B in one bench run: a loop option switched on for every second turn.

Two runs one after the other on a shared 2-core machine measure two machine loads as
much as two settings; turns taken in turn (ABAB...) share the load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from companion.bench.results import BenchResult


def alternate(flag: str | None, daemon: Any, result: BenchResult) -> Callable[[int], None]:
    """What to do as turn ``i`` starts: switch ``flag`` on for odd turns, off for even ones."""
    if flag is None:
        return lambda _i: None
    from companion.loop import LoopOptions

    if flag not in {f.name for f in fields(LoopOptions)} or not isinstance(getattr(LoopOptions(), flag), bool):
        raise ValueError(f"--alternate: {flag!r} is not a yes/no loop option")
    on: list[int] = []
    result.setup["alternate"] = {"flag": flag, "on": on}

    def flip(i: int) -> None:
        loop = daemon.loop
        if loop is not None:
            loop.options = replace(loop.options, **{flag: i % 2 == 1})
            if i % 2 == 1:
                on.append(i)

    return flip
