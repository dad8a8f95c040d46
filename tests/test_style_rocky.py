"""Rocky's translator-speak: the shipped persona's style rules, as tables of input -> output."""

from __future__ import annotations

import pytest

from companion.persona import SHIPPED_DIR, Persona, load_persona_file, transform_text


@pytest.fixture(scope="module")
def rocky() -> Persona:
    return load_persona_file(SHIPPED_DIR / "rocky.yaml")


WRITE_UP = [
    # the examples in the rocky_say write-up, exactly
    (
        "I don't understand what you're saying. Can you explain?",
        "No understand what you saying. Can you explain, question?",
    ),
    ("Goodbye my friend. I will miss you.", "See you later. But I no see you later my friend. I miss you."),
    ("Hello, how are you doing today?", "Hello, how you doing today, question?"),
    ("I will make a chain.", "I make chain."),
    ("Grace should go home.", "Grace go home."),
]

EMPHASIS = [
    ("Good!", "Good good good!"),
    ("Very good.", "Good good good."),
    ("That was really bad.", "That was bad bad bad."),
    ("This is amazing!", "This is amaze amaze amaze!"),
    ("That is really really good.", "That is good good good."),
    ("I'm so sorry.", "I sorry sorry sorry."),
    ("The astrophage is very dangerous.", "Astrophage is dangerous dangerous dangerous."),
    ("That's great news, Grace!", "That is good good good news, Grace!"),
    ("Amazing amazing amazing.", "Amaze amaze amaze."),
    ("Amaze amaze amaze!", "Amaze amaze amaze!"),
    ("Good, we fixed it.", "Good good good, we fixed it."),
    ("It was a good day.", "It was good day."),  # plain "good" inside a clause stays single
    ("THAT IS VERY BAD.", "THAT IS BAD BAD BAD."),
]

GRAMMAR = [
    ("Are you okay?", "You okay, question?"),
    ("Do you like the ship?", "You like ship, question?"),
    ("Would you like some tea?", "You like some tea, question?"),
    ("Could you help me with the reactor?", "Can you help me with reactor, question?"),
    ("I can't do that.", "I no can do that."),
    ("I cannot do that.", "I no can do that."),
    ("It's good.", "Is good."),
    ("I think it's broken.", "I think is broken."),
    ("We're going to the planet.", "We going to planet."),
    ("I am not afraid.", "I no afraid."),
    ("You are my friend.", "You my friend."),
    ("Grace is a scientist.", "Grace is scientist."),
    ("They didn't see the light.", "They no see light."),
    ("Do not touch that.", "No touch that."),
    ("I've finished the repair.", "I finished repair."),
    ("Let's go to Tau Ceti.", "We go to Tau Ceti."),
    ("You should sleep. I will watch.", "You sleep. I watch."),
    ("What's your name?", "What is your name, question?"),
    ("Give me a fist bump!", "Give me fist my bump!"),
    ("Goodbye!", "See you later. But I no see you later!"),
    ("Goodbye, Grace.", "See you later. But I no see you later, Grace."),
]

EDGES = [
    # whole words only
    ("It's a factually correct banana.", "Is factually correct banana."),
    ("I told him goodbye yesterday.", "I told him goodbye yesterday."),  # only a sentence-opening goodbye
    ("The theory is bad.", "Theory is bad."),
    # curly apostrophes work like straight ones
    ("Don\u2019t worry, I\u2019ll fix the engine.", "No worry, I fix engine."),
    ("I\u2019m happy to see you.", "I happy to see you."),
    # names keep their capitals and are not rewritten
    ("I saw The Martian with Will Smith yesterday.", "I saw The Martian with Will Smith yesterday."),
    ("Plan A is good.", "Plan A is good."),
    # a trailing auxiliary stays
    ("Yes, I will.", "Yes, I will."),
    # punctuation and numbers kept
    ("The ship has 3 engines and 12.5 tons of fuel.", "Ship has 3 engines and 12.5 tons of fuel."),
    ("Where is the fuel?", "Where is fuel, question?"),
    ("Why?", "Why, question?"),
    ("Really?!", "Really, question?"),
    ("What is the question?", "What is question, question?"),
    # already Rocky: unchanged
    ("Is this the right way, question?", "Is this right way, question?"),
    ("Can you explain, question?", "Can you explain, question?"),
    # whitespace, capitals, emoji
    ("  hello there, friend!  ", "Hello there, friend!"),
    ("HELLO, ARE YOU THERE?", "HELLO, YOU THERE, question?"),
    ("\U0001f680 Rocket time! \U0001f389", "\U0001f680 Rocket time! \U0001f389"),
    ("\u2026?", "\u2026?"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), WRITE_UP + EMPHASIS + GRAMMAR + EDGES)
def test_rocky_says_it_his_way(rocky: Persona, text: str, expected: str) -> None:
    assert rocky.transform(text) == expected


def test_the_table_is_big_enough() -> None:
    assert len(WRITE_UP + EMPHASIS + GRAMMAR + EDGES) >= 40


@pytest.mark.parametrize(("text", "expected"), WRITE_UP + GRAMMAR)
def test_sentence_by_sentence_equals_whole_text(rocky: Persona, text: str, expected: str) -> None:
    assert transform_text(rocky, text) == expected


def test_a_question_suffix_is_never_doubled(rocky: Persona) -> None:
    once = rocky.transform("Can you explain?")
    assert rocky.transform(once) == once
    assert once.count("question") == 1


@pytest.mark.parametrize("line", ["greeting", "farewell", "fallback"])
def test_canned_lines_are_already_in_rockys_words(rocky: Persona, line: str) -> None:
    text = getattr(rocky, line)
    assert text and rocky.transform(text) == text
