"""Regexes from persona files, bounded in time (see :mod:`companion.limits`).

A shared persona file can hold a rule like ``(a+)+$`` that backtracks for minutes
on a sentence of 30 characters. Python's ``re`` cannot be interrupted, so style
rules run on the ``regex`` package, which takes a timeout, and are checked when
the persona is loaded:

* a pattern longer than :data:`~companion.limits.REGEX_MAX_CHARS`, or whose nested
  counted repeats (``(a{100}){100}``) would compile into a huge program, is refused;
* the pattern is run on probe strings made of its own characters (what makes
  backtracking explode); one that takes over :data:`~companion.limits.REGEX_CHECK_S`
  is refused, naming the probe;
* at run time each use has :data:`~companion.limits.REGEX_TIMEOUT_S`; a rule that
  runs out is skipped for that sentence and, logged once, for the rest of the run.
"""

from __future__ import annotations

import functools
import logging
import re
import re._constants as sre_constants
import re._parser as sre_parse
from collections.abc import Callable
from typing import Any

import regex

from companion import limits

_log = logging.getLogger(__name__)

_MAX_REPEAT_PRODUCT = 10_000
"""Counted repeats nested inside each other may multiply to at most this."""
_PROBE_CHARS = 500
"""Probes are this long: longer than any sentence the loop speaks (they are cut at 240)."""
_disabled: set[tuple[str, bool]] = set()


class RegexTooSlow(Exception):
    """A persona regex would take too long; ``str()`` says why."""


@functools.lru_cache(maxsize=1024)
def compile_rule(pattern: str, ignore_case: bool) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.IGNORECASE if ignore_case else 0)


def problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a style rule (syntax, size), or None. Does not run it."""
    if len(pattern) > limits.REGEX_MAX_CHARS:
        return f"longer than {limits.REGEX_MAX_CHARS} characters; split it into several rules"
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"not a valid regular expression ({exc}); expected a Python regex"
    if _repeat_product(parsed) > _MAX_REPEAT_PRODUCT:
        return f"its counted repeats nest to more than {_MAX_REPEAT_PRODUCT} copies; simplify it"
    try:
        compile_rule(pattern, True)
    except (regex.error, RecursionError, OverflowError, MemoryError) as exc:
        return f"not supported here ({exc}); expected a Python regex"
    return None


def _repeat_product(parsed: Any) -> int:
    """The largest product of nested bounded repeat counts in a parsed pattern."""
    best = 1
    stack: list[tuple[Any, int]] = [(parsed, 1)]
    while stack:
        items, factor = stack.pop()
        for op, av in items:
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
                lo, hi, sub = av
                count = max(lo, 1) if hi == sre_constants.MAXREPEAT else hi
                best = max(best, factor * count)
                stack.append((sub, factor * count))
            elif op == sre_constants.SUBPATTERN:
                stack.append((av[-1], factor))
            elif op == sre_constants.BRANCH:
                stack.extend((branch, factor) for branch in av[1])
            elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
                stack.append((av[1], factor))
            elif op == sre_constants.GROUPREF_EXISTS:
                stack.extend((b, factor) for b in av[1:] if b is not None)
    return best


def probes(pattern: str) -> list[str]:
    """Strings that make a backtracking pattern explode: long runs of its own characters, then a misfit."""
    letters = sorted({c for c in pattern if c.isalnum()} | {"a"})[:12]
    tails = ("!", "\x00", "")
    out = [c * _PROBE_CHARS + t for c in letters for t in tails]
    out += [(" ".join(letters) + " ") * (_PROBE_CHARS // (2 * len(letters) + 1)) + "!", " " * _PROBE_CHARS + "!"]
    out.append("".join(letters) * (_PROBE_CHARS // len(letters)) + "!")
    return out


@functools.lru_cache(maxsize=1024)  # a persona is checked on every load (reloads, /say in another persona)
def check_speed(pattern: str, ignore_case: bool) -> str | None:
    """None if ``pattern`` finishes every probe within :data:`~companion.limits.REGEX_CHECK_S`."""
    compiled = compile_rule(pattern, ignore_case)
    for probe in probes(pattern):
        try:
            compiled.sub("", probe, timeout=limits.REGEX_CHECK_S)
        except TimeoutError:
            shown = probe[:8] + "..." + probe[-1:] if len(probe) > 12 else probe
            return (
                f"too slow: over {limits.REGEX_CHECK_S:g} s on {shown!r} ({len(probe)} characters); "
                "it backtracks catastrophically: avoid nested repeats like (a+)+"
            )
    return None


def sub(pattern: str, ignore_case: bool, repl: Callable[[Any], str], text: str) -> str:
    """``pattern.sub(repl, text)`` within :data:`~companion.limits.REGEX_TIMEOUT_S`; on timeout ``text``."""
    key = (pattern, ignore_case)
    if key in _disabled:
        return text
    try:
        return compile_rule(pattern, ignore_case).sub(repl, text, timeout=limits.REGEX_TIMEOUT_S)
    except TimeoutError:
        _disabled.add(key)
        _log.warning(
            "style rule %r took over %g s on a %d-character sentence: skipped from now on",
            pattern[:80],
            limits.REGEX_TIMEOUT_S,
            len(text),
        )
        return text
