"""Speculation on a draft: how long its pause is held, and whether the reply is started on it."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from test_vad import SPEECH, Mic

from companion.loop.drafts import answer_draft, likely_over
from companion.turnend import LlmEnd, SyntaxEnd, SyntaxThenLlm


def _done(text: str) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(text)
    return future


@pytest.mark.parametrize(
    ("text", "hold", "start"),
    [
        ("Tell me a joke.", 200, True),  # complete: short pause, read it ahead
        ("Tell me a joke", 700, True),  # unsure: held longer, still likely the whole turn
        ("I want to tell you about my", 1200, False),  # unfinished: the user will go on
    ],
)
def test_the_reply_is_started_on_a_draft_unless_it_is_plainly_unfinished(text, hold, start):
    mic = Mic(SPEECH, min_end_silence_ms=200, max_end_silence_ms=1200)
    draft = mic.until_draft()
    heard, given = answer_draft(mic.det, SyntaxEnd(200, 1200), draft, _done(text))
    assert (heard, given) == (text, hold)
    assert likely_over(given, mic.det) is start
    mic.step(len(SPEECH) - mic.frame)
    assert mic.turns[0].detected_s - mic.turns[0].end_s == pytest.approx(hold / 1000 + 0.03, abs=0.031)


def test_a_busy_llm_leaves_the_decision_to_the_rules_and_the_turn_still_ends_early():
    def busy(_: str) -> float:
        raise TimeoutError("no end-of-turn probability in 0.4 s (withdrawn)")

    mic = Mic(SPEECH, min_end_silence_ms=200, max_end_silence_ms=1200)
    draft = mic.until_draft()
    policy = SyntaxThenLlm(SyntaxEnd(200, 1200), LlmEnd(busy, 200, 1200))
    assert answer_draft(mic.det, policy, draft, _done("What time is it?")) == ("What time is it?", 200)
    mic.step(len(SPEECH) - mic.frame)
    assert mic.turns[0].detected_s - mic.turns[0].end_s == pytest.approx(0.23, abs=0.031)


def test_without_a_policy_every_draft_is_worth_reading_ahead():
    mic = Mic(SPEECH)
    draft = mic.until_draft()
    assert answer_draft(mic.det, None, draft, _done("hello")) == ("hello", None)
    assert likely_over(None, mic.det)


def test_a_cancelled_draft_says_nothing():
    mic = Mic(SPEECH)
    draft = mic.until_draft()
    future: Future[str] = Future()
    future.cancel()
    assert answer_draft(mic.det, SyntaxEnd(200, 1200), draft, future) == ("", None)


def test_a_draft_the_user_went_on_from_is_not_put_to_the_policy():
    """Its probe would only hold up the STT thread, and so the next draft."""
    asked: list[str] = []

    def probability(text: str) -> float:
        asked.append(text)
        return 0.9

    mic = Mic("_" * 20 + "#" * 20 + "___" + "#" * 10 + "_" * 60, min_end_silence_ms=200, max_end_silence_ms=1200)
    draft = mic.until_draft()
    mic.step(4)  # the user speaks again before the draft's transcript is in
    policy = SyntaxThenLlm(SyntaxEnd(200, 1200), LlmEnd(probability, 200, 1200))
    assert answer_draft(mic.det, policy, draft, _done("What time is it?")) == ("What time is it?", None)
    assert asked == []
    later = mic.until_draft()
    assert answer_draft(mic.det, policy, later, _done("What time is it now?")) == ("What time is it now?", 200)
    assert asked == ["What time is it now"]
