"""The scripted-conversation evaluation (issue 14) on the embedded SmolLM2-135M.

Both question sets run through GroundedChat on the real model; conversations with
``restart: true`` continue in a new process on the same state directory. The
held-back set (tests/eval/heldback.yaml) was written before the mechanism and is not
tuned against. Targets: facts and memory >= 9/10, hygiene 10/10, recall after a
restart. ``tests/eval/harness.py transcripts`` writes the before/after transcripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "eval"))
from harness import HERE, Result, run_script, summary

pytestmark = pytest.mark.slow


def _rate(score: tuple[int, int]) -> float:
    return score[0] / score[1] if score[1] else 1.0


@pytest.fixture(scope="module", params=["tuning", "heldback"])
def result(request: pytest.FixtureRequest) -> Result:
    res = run_script(HERE / f"{request.param}.yaml")
    print(f"\n{request.param}: {summary(res)}")
    return res


def test_persona_facts_and_staying_non_human(result: Result) -> None:
    assert _rate(result.score("facts", "nonhuman")) >= 0.9, summary(result)


def test_the_user_is_remembered_in_the_session_and_after_a_restart(result: Result) -> None:
    assert _rate(result.score("memory", "restart")) >= 0.9, summary(result)
    recalled, asked = result.score("restart")
    assert asked and recalled == asked, summary(result)


def test_replies_are_short_plain_and_never_chatbot_talk(result: Result) -> None:
    ok, n = result.hygiene()
    bad = [t.reply for t in result.turns if not t.hygiene]
    assert ok == n, bad
