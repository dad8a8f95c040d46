"""Regex style rules from a shared persona file cannot freeze the robot's speech (issue 15)."""

from __future__ import annotations

import logging
import time

import pytest

from companion import saferegex
from companion.settings import ConfigError, build
from companion.style import StyleRules, transform


def rules(*phrases: dict[str, object]) -> StyleRules:
    return build(StyleRules, {"phrases": list(phrases)}, source="p.yaml", prefix="style")


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|a)*$", r"^(a|aa)+$", r"(\w+\s?)+$", r"(x+x+)+y", r"(.*a){20}$"])
def test_a_catastrophic_regex_is_refused_when_the_persona_is_checked(pattern: str):
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        rules({"regex": pattern, "replace": "x"})
    took = time.monotonic() - started
    error = str(err.value)
    assert error.startswith("p.yaml: style.phrases[0]: regex ") and "too slow" in error and "\n" not in error
    assert took < 2.0


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a" * 501, "longer than 500 characters"),
        (r"(a{100}){1000}", "counted repeats nest to more than 10000"),
        (r"((a{1000}){1000}){1000}", "counted repeats nest"),
        (r"(", "not a valid regular expression"),
    ],
)
def test_huge_or_broken_regexes_are_refused_without_compiling_them(pattern: str, message: str):
    started = time.monotonic()
    with pytest.raises(ConfigError, match=message):
        rules({"regex": pattern})
    assert time.monotonic() - started < 1.0


def test_ordinary_regexes_still_work_with_groups_and_case():
    style = rules({"regex": r"\b(can|could) ?not\b", "replace": r"no \1"}, {"regex": r"^hello\b", "replace": "Hi"})
    assert transform(style, "Hello, I cannot go.") == "Hi, I no can go."


def test_a_regex_that_runs_out_of_time_at_run_time_is_skipped_and_logged_once(caplog):
    pattern = r"(a|aa)+$"  # never allowed in a persona; here straight to the run-time guard
    text = "a" * 40 + "!"
    with caplog.at_level(logging.WARNING, logger="companion.saferegex"):
        started = time.monotonic()
        assert saferegex.sub(pattern, True, lambda m: "x", text) == text
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(100):
            assert saferegex.sub(pattern, True, lambda m: "x", text) == text
        later = time.monotonic() - started
    assert first < 0.5 and later < 0.05
    assert [r.message for r in caplog.records if "skipped from now on" in r.message]
    assert len(caplog.records) == 1
