"""Fuzz suite settings: a derandomized hypothesis profile (CI) and a per-input time and memory meter.

Every fuzz input must end in a 4xx answer or a one-line error within
:data:`SECONDS` and :data:`EXTRA_MB` of extra peak RSS, never a traceback or a 5xx.
``HYPOTHESIS_PROFILE=dev`` runs more (random) examples when hunting for new cases;
cases worth keeping go into ``tests/fuzz/corpus/`` (replayed by ``test_corpus.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fuzzkit
from fuzzkit import ErrorLog, Meter

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,  # time is asserted per input by Meter (a clearer message than a deadline)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile("dev", parent=settings.get_profile("ci"), derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="module")
def meter() -> Iterator[Meter]:
    m = Meter()
    yield m
    print(f"\n{m.inputs} inputs: slowest {m.worst_s * 1000:.0f} ms, most extra peak RSS {m.worst_mb:.1f} MB")


@pytest.fixture()
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logger = logging.getLogger("companion")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    assert not handler.records, f"errors logged: {[r.getMessage()[:200] for r in handler.records]}"
