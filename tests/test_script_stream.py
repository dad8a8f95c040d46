"""A reply said piece by piece: the first clause early, styled so the whole sentence reads right."""

from __future__ import annotations

import pytest

from companion.persona import SHIPPED_DIR, Persona, load_persona_file
from companion.script import Piece, StreamScript, spoken_form
from companion.settings import build
from companion.style import StyleRules

ROCKY = load_persona_file(SHIPPED_DIR / "rocky.yaml")
WHEATLEY = load_persona_file(SHIPPED_DIR / "wheatley.yaml")


def stream(persona: Persona, text: str, words: int = 4) -> list[Piece]:
    script = StreamScript(persona, first_clause_words=words)
    out: list[Piece] = []
    for token in text.split(" "):  # as an LLM streams: a word and its space at a time
        out += script.feed(token + " ")
    return out + script.flush()


@pytest.mark.parametrize(
    ("text", "clause", "rest"),
    [
        (
            "Hello there my good friend, how are you doing today?",
            "Hello there my good friend,",
            "how you doing today, question?",
        ),
        # "^do you" is Rocky's rule for a sentence that opens with it, not for a later clause
        ("I have a question for you, do you like the ship?", "I have question for you,", "do you like ship, question?"),
        # and so is "^goodbye"
        ("That was a really fun talk, goodbye my friend.", "That was really fun talk,", "goodbye my friend."),
        ("Do you like the new engine, or the old one?", "You like new engine,", "or old one, question?"),
        ("I don't know about that one, Grace.", "No know about that one,", "Grace."),
    ],
)
def test_rocky_says_a_sentence_in_two_pieces_as_he_says_it_whole(text: str, clause: str, rest: str) -> None:
    pieces = stream(ROCKY, text)
    assert [(p.spoken, p.ends_sentence) for p in pieces] == [(clause, False), (rest, True)]
    assert " ".join(p.spoken for p in pieces) == spoken_form(ROCKY, text)
    assert " ".join(p.written for p in pieces) == text


def test_only_the_first_sentence_of_a_reply_is_said_in_pieces() -> None:
    text = "Yes. I have a question for you, do you like the ship? Good, we go now, Grace."
    pieces = stream(ROCKY, text)
    assert [p.written for p in pieces] == [
        "Yes.",
        "I have a question for you, do you like the ship?",
        "Good, we go now, Grace.",
    ]
    assert all(p.ends_sentence for p in pieces)


def test_with_zero_words_every_sentence_is_said_whole() -> None:
    pieces = stream(ROCKY, "Hello there my good friend, how are you doing today?", words=0)
    assert [p.spoken for p in pieces] == ["Hello there my good friend, how you doing today, question?"]


@pytest.mark.parametrize(
    "text",
    [
        "Okay so the thing about the reactor, it is perfectly fine.",
        "We should probably go to the lab now, before anyone notices.",
        "I have a great idea for this, trust me.",
        "The facility is enormous and quite old, but it works.",
        "Well I was not expecting that at all, was I?",
        "Right then let us get moving, shall we?",
    ],
)
def test_wheatleys_fillers_never_land_inside_a_sentence_said_in_pieces(text: str) -> None:
    clause, rest = stream(WHEATLEY, text)
    plain = Persona(name="Wheatley", system_prompt="x", style=StyleRules(words=WHEATLEY.style.words))
    assert clause.spoken == plain.transform(clause.written)  # no opener, aside or closer in the first clause
    whole = f"{clause.spoken} {rest.spoken}"
    # the whole sentence as he would say it (habits at its end kept), else without habits
    assert whole in (WHEATLEY.transform(text), plain.transform(text))


def test_a_rule_across_the_clause_boundary_never_says_words_twice() -> None:
    rules = build(StyleRules, {"phrases": [{"regex": r"lovely day, (\w+)", "replace": r"fine day, \1"}]}, source="t")
    persona = Persona(name="P", system_prompt="x", style=rules)
    pieces = stream(persona, "What a really lovely day, Grace.")
    assert [p.spoken for p in pieces] == ["What a really lovely day,", "Grace."]


def test_a_failing_transform_says_both_pieces_plainly() -> None:
    class Broken(Persona):
        def transform(self, sentence: str) -> str:
            raise RuntimeError("bad rule")

    broken = Broken(name="P", system_prompt="x", style=ROCKY.style)
    pieces = stream(broken, "Hello there my good friend, how are you doing today?")
    assert [p.written for p in pieces] == ["Hello there my good friend,", "how are you doing today?"]
    assert pieces[1].spoken == "how are you doing today?"
