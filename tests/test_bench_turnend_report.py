"""`companion bench` reports the end-of-turn decision on its own, and runs a same-run A/B."""

from __future__ import annotations

import pytest

from companion.bench.ab import alternate
from companion.bench.report import cut_note, end_of_turn, format_report, pieces, to_json, was_cut
from companion.bench.results import BenchResult, TurnResult
from companion.loop import LoopOptions


def _turn(name: str, response: float | None, vad_wait: float, error: str | None = None) -> TurnResult:
    stages = {"vad_wait": vad_wait, "stt": 10.0, "llm_first_sentence": 100.0, "tts_first_audio": 50.0}
    if response is not None:
        stages["playback_start"] = response - sum(stages.values())
        stages["llm_first_token"] = 80.0
    return TurnResult(name, 0, "hi", 1.0, "hi", "hello", response, stages, error=error)


def _result() -> BenchResult:
    result = BenchResult(machine={"description": "test"}, models={}, setup={"end_of_turn": "syntax+llm"})
    result.turns = [
        _turn("a", 700.0, 200.0),
        _turn("b", 900.0, 400.0),
        _turn("c", 1200.0, 300.0, error=cut_note(2)),  # the user was cut off in a pause
        _turn("d", 800.0, 600.0),
    ]
    return result


def test_a_turn_heard_as_several_counts_as_cut_off():
    assert pieces(_turn("x", 1.0, 1.0, error=f"no audio played; {cut_note(3)}")) == 3
    assert pieces(_turn("x", 1.0, 1.0)) == 1


def test_a_reply_heard_before_the_user_finished_counts_as_cut_off():
    """ "That sounds lovely. [pause] Goodbye for now!" answered as one turn whose reply began
    during "Goodbye for now!": the user was talked over, though the loop made one turn of it."""
    assert was_cut(_turn("x", -542.0, -950.0))
    assert not was_cut(_turn("x", 300.0, 200.0))
    assert not was_cut(_turn("x", None, 200.0))


def test_the_end_of_turn_wait_and_cut_offs_are_reported_on_their_own():
    result = _result()
    eot = end_of_turn(result)
    assert eot["policy"] == "syntax+llm"
    assert eot["cut_turns"] == 1 and eot["turns"] == 4 and eot["cut_rate"] == 0.25
    assert eot["wait_ms"]["n"] == 3 and eot["wait_ms"]["median"] == 400.0  # the cut turn's wait is left out
    assert to_json(result)["summary"]["end_of_turn"] == eot  # type: ignore[index]
    text = format_report(result)
    assert "end of turn (syntax+llm): waited median 400 ms" in text
    assert "cut the user off in 1 of 4 turns" in text


def test_a_same_run_ab_switches_the_option_every_second_turn_and_reports_both_halves():
    class Daemon:
        loop = type("Loop", (), {"options": LoopOptions()})()

    result = _result()
    flip = alternate("speculative_prefill", Daemon(), result)
    seen = []
    for i in range(4):
        flip(i)
        seen.append(Daemon.loop.options.speculative_prefill)
    assert seen == [False, True, False, True]
    assert result.setup["alternate"] == {"flag": "speculative_prefill", "on": [1, 3]}
    text = format_report(result)
    assert "speculative_prefill on : response median 850 ms" in text  # turns b and d
    assert "speculative_prefill off: response median 950 ms" in text  # turns a and c
    assert "cut off 0 of 2" in text.split("speculative_prefill on :")[1].splitlines()[0]
    assert "cut off 1 of 2" in text.split("speculative_prefill off:")[1].splitlines()[0]  # turn c


def test_only_a_yes_no_loop_option_can_be_switched():
    with pytest.raises(ValueError, match="not a yes/no loop option"):
        alternate("stage_timeout_s", object(), _result())
    with pytest.raises(ValueError, match="not a yes/no loop option"):
        alternate("no_such_flag", object(), _result())
