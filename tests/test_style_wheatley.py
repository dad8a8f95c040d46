"""Wheatley's nervous habits: fillers, self-interruptions, asides, at a set intensity."""

from __future__ import annotations

import random
from typing import Any

import pytest

from companion.persona import SHIPPED_DIR, Persona, load_persona_file
from companion.settings import build
from companion.style import StyleRules, transform


@pytest.fixture(scope="module")
def wheatley() -> Persona:
    return load_persona_file(SHIPPED_DIR / "wheatley.yaml")


def habits(kinds: dict[str, list[str]], intensity: float = 1.0, seed: int = 1) -> StyleRules:
    """Rules with only the given habits, each always used at intensity 1."""
    fillers = {k: {"rate": 1.0, "lines": v} for k, v in kinds.items()}
    return build(StyleRules, {"fillers": {"intensity": intensity, "seed": seed, **fillers}}, source="test")


RIGHT = {"openers": ["Right,"]}
HABIT_TABLE = [
    # openers: common first words are lowered, names and "I" keep their capital
    (RIGHT, "The door is locked.", "Right, the door is locked."),
    (RIGHT, "Rocky is here.", "Right, Rocky is here."),
    (RIGHT, "I am fine.", "Right, I am fine."),
    (RIGHT, "Put it down.", "Right, put it down."),
    (RIGHT, "Is it locked?", "Right, is it locked?"),
    ({"openers": ["Oh!"]}, "The door is locked.", "Oh! The door is locked."),
    # closers
    ({"closers": ["Right."]}, "The door is locked.", "The door is locked. Right."),
    ({"closers": ["Right."]}, "Is it locked?", "Is it locked? Right."),
    # asides go on statements only, before the final punctuation
    ({"asides": ["which is fine"]}, "The door is locked.", "The door is locked, which is fine."),
    ({"asides": ["which is fine"]}, "Run!", "Run, which is fine!"),
    ({"asides": ["which is fine"]}, "The door is locked", "The door is locked, which is fine."),
    ({"asides": ["which is fine"]}, "Is it locked?", "Is it locked?"),
    # self-interruptions: start, break off, restart
    ({"interruptions": ["sorry,"]}, "The door is locked.", "The door— sorry, the door is locked."),
    ({"interruptions": ["sorry,"]}, "We should take the lift now.", "We should— sorry, we should take the lift now."),
    ({"interruptions": ["sorry,"]}, "Rocky will fix the engine.", "Rocky will— sorry, Rocky will fix the engine."),
    ({"interruptions": [""]}, "We should take the lift now.", "We should— we should take the lift now."),
    ({"interruptions": ["sorry,"]}, "Go now.", "Go now."),  # too short to break off
    # all at once
    (
        {"openers": ["Right,"], "closers": ["Okay."], "asides": ["probably"], "interruptions": ["hang on,"]},
        "The lift is on the left side.",
        "Right, the lift is— hang on, the lift is on the left side, probably. Okay.",
    ),
    # a sentence that already shows a habit gets no more
    (RIGHT, "Right, the lift is on the left side.", "Right, the lift is on the left side."),
]


@pytest.mark.parametrize(("kinds", "text", "expected"), HABIT_TABLE)
def test_habits_show_up_as_configured(kinds: dict[str, list[str]], text: str, expected: str) -> None:
    assert transform(habits(kinds), text) == expected


SHIPPED_TABLE = [
    # the shipped persona at its own seed and intensity: word map + habits
    ("That is a great idea.", "That is a brilliant idea."),
    ("The door is locked.", "The door— no, wait, the door is locked."),
    ("Everything is fine.", "Right, everything is fine."),
    ("Let me think about it.", "Let me think— hang on, let me think about it."),
    ("The weather today is sunny and warm.", "Okay, so, the weather today is sunny and warm."),
    ("Rocky is my friend.", "Rocky is my friend, no pressure."),
    ("Are you sure?", "Oh! Are you sure?"),
    ("Don't touch that button.", "Don't touch that button."),
]


@pytest.mark.parametrize(("text", "expected"), SHIPPED_TABLE)
def test_shipped_wheatley(wheatley: Persona, text: str, expected: str) -> None:
    assert wheatley.transform(text) == expected


def test_the_tables_are_big_enough() -> None:
    assert len(HABIT_TABLE + SHIPPED_TABLE) >= 15


CORPUS = [
    "The door is locked.",
    "We should take the lift to the top floor.",
    "I think the reactor is going to explode.",
    "This is the best plan ever.",
    "You should probably leave now.",
    "It is three o'clock in the afternoon.",
    "Let me have a look at the panel.",
    "The weather today is sunny and warm.",
    "Nobody has been down here for years.",
    "I have absolutely no idea where we are.",
    "Put the core in the socket.",
    "Nothing can possibly go wrong now.",
]


def test_intensity_zero_leaves_text_alone() -> None:
    rules = habits({"openers": ["Right,"], "closers": ["Okay."], "asides": ["probably"]}, intensity=0.0)
    assert [transform(rules, s) for s in CORPUS] == CORPUS


def test_more_intensity_means_more_habits(wheatley: Persona) -> None:
    def changed(intensity: float) -> int:
        rules = build(
            StyleRules,
            {"fillers": {**_shipped_fillers(wheatley), "intensity": intensity}},
            source="test",
        )
        return sum(transform(rules, s) != s for s in CORPUS)

    low, high = changed(0.1), changed(1.0)
    assert low < high
    assert high >= len(CORPUS) // 2


def _shipped_fillers(persona: Persona) -> dict[str, Any]:
    fillers: dict[str, Any] = persona.as_data()["style"]["fillers"]
    return fillers


def test_the_same_sentence_always_comes_out_the_same(wheatley: Persona) -> None:
    first = [wheatley.transform(s) for s in CORPUS]
    random.seed(99)  # global random state plays no part
    assert [wheatley.transform(s) for s in CORPUS] == first


def test_the_transform_does_not_touch_global_random_state(wheatley: Persona) -> None:
    state = random.getstate()
    for s in CORPUS:
        wheatley.transform(s)
    assert random.getstate() == state


def test_the_seed_changes_where_habits_fall(wheatley: Persona) -> None:
    outputs = set()
    for seed in range(4):
        rules = build(
            StyleRules,
            {"fillers": {**_shipped_fillers(wheatley), "intensity": 1.0, "seed": seed}},
            source="test",
        )
        outputs.add(tuple(transform(rules, s) for s in CORPUS))
    assert len(outputs) == 4


def test_a_streamed_reply_gets_habits_per_sentence(wheatley: Persona) -> None:
    reply = " ".join(CORPUS[:4])
    streamed = " ".join(wheatley.transform(s) for s in CORPUS[:4])
    assert wheatley.transform(reply) == streamed


@pytest.mark.parametrize("line", ["greeting", "farewell", "fallback"])
def test_canned_lines_are_left_as_written(wheatley: Persona, line: str) -> None:
    text = getattr(wheatley, line)
    assert text and wheatley.transform(text) == text
