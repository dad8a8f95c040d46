"""Properties every persona's style transform keeps, checked on generated text."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from companion.persona import SHIPPED_DIR, load_persona_file
from companion.sentences import split_sentences
from companion.settings import ConfigError, build
from companion.style import StyleRules, transform

PERSONAS = {name: load_persona_file(SHIPPED_DIR / f"{name}.yaml") for name in ("rocky", "wheatley", "default")}

WORDS = [
    "I", "you", "don't", "can't", "you're", "it's", "the", "a", "an", "will", "are", "am",
    "is", "do", "very", "good", "bad", "amazing", "great", "goodbye", "Grace", "Rocky",
    "question", "not", "ship", "A", "Will", "so", "sorry", "right", "okay", "42", "3.5",
    "don\u2019t", "fist", "bump", "what", "how", "today", "\u00e9t\u00e9", "\U0001f680",
]  # fmt: skip
PUNCT = [",", ".", "!", "?", "?!", "...", "\u2026", ";", ":", "\u2014", "'", '"', "(", ")"]

word_salad = st.lists(st.sampled_from(WORDS + PUNCT), min_size=1, max_size=14).map(" ".join)
any_text = st.text(max_size=80)
sentences = st.one_of(word_salad, any_text)
questions = st.one_of(word_salad, any_text).map(lambda s: s + "?")
persona_names = st.sampled_from(sorted(PERSONAS))
APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fast
@given(persona_names, sentences)
def test_never_raises_and_returns_text(name: str, text: str) -> None:
    assert isinstance(PERSONAS[name].transform(text), str)


@fast
@given(persona_names, sentences)
def test_never_empties_a_sentence(name: str, text: str) -> None:
    if text.strip():
        assert PERSONAS[name].transform(text).strip()


@fast
@given(persona_names, questions)
def test_idempotent_on_transformed_questions(name: str, question: str) -> None:
    once = PERSONAS[name].transform(question)
    assert PERSONAS[name].transform(once) == once


@fast
@given(word_salad)
def test_rocky_never_says_question_twice_in_a_row(text: str) -> None:
    out = PERSONAS["rocky"].transform(text + "?")
    assert ", question, question?" not in out.lower()


@fast
@given(sentences)
def test_no_leading_or_trailing_whitespace(text: str) -> None:
    if text.strip():
        out = PERSONAS["rocky"].transform(text)
        assert out == out.strip()


@fast
@given(st.text(alphabet=st.characters(categories=("L", "Nd", "Zs")), max_size=60))
def test_words_are_never_cut_in_half(text: str) -> None:
    """Every word Rocky says is a whole word of the input, a mapped word or a suffix word."""
    rocky = PERSONAS["rocky"]
    said = rocky.transform(text).casefold().split()
    heard = {w.casefold() for w in text.translate(APOSTROPHES).split()}
    heard |= {(w[:1].upper() + w[1:]).casefold() for w in heard}  # a capitalised first word
    heard |= {"no", "can", "is", "we", "i", "you", "question", "good", "bad", "amaze"}
    heard |= {"see", "later", "but", "my"}
    for word in said:
        assert word.strip(",.?!") in heard or word in heard


def test_unstyled_persona_only_tidies() -> None:
    plain = StyleRules()
    assert transform(plain, "  the ship is ready.  ") == "The ship is ready."
    assert transform(plain, "iPhone sales are up.") == "iPhone sales are up."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("It costs 3.50 dollars. Okay.", ["It costs 3.50 dollars.", "Okay."]),
        ("Dr. Grace is here. Mr. Rocky too.", ["Dr. Grace is here.", "Mr. Rocky too."]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Wait... what?", ["Wait...", "what?"]),
        ("line one\nline two", ["line one", "line two"]),
        ("   ", []),
        ("Really\n?!", ["Really ?!"]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def rules(style: dict[str, object]) -> StyleRules:
    return build(StyleRules, style, source="test.yaml", prefix="style")


def test_phrase_rules_apply_in_order_and_keep_case() -> None:
    r = rules(
        {
            "phrases": [
                {"literal": "hello there", "replace": "greetings"},
                {"literal": "greetings", "replace": "hail"},
                {"regex": r"(\d+) apples", "replace": r"\1 red apples"},
            ]
        }
    )
    assert transform(r, "Hello  there, I have 3 apples.") == "Hail, I have 3 red apples."
    assert transform(r, "Othello there.") == "Othello there."  # whole words only


def test_word_maps_keep_case() -> None:
    r = rules({"words": {"hello": "howdy"}, "capitalize": False})
    assert transform(r, "hello HELLO") == "howdy HOWDY"
    assert transform(r, "Hello there.") == "Howdy there."
    assert transform(r, "I said Hello.") == "I said Hello."  # a capital inside a sentence: a name


def test_compiled_patterns_are_cached() -> None:
    r = rules({"phrases": [{"regex": "a+b", "replace": "x"}]})
    assert r.phrases[0].pattern is r.phrases[0].pattern


@pytest.mark.parametrize(
    ("style", "message"),
    [
        ({"phrases": [{"regex": "(unclosed", "replace": ""}]}, "test.yaml: style.phrases[0].regex: not a valid"),
        ({"phrases": [{"regex": "a", "replace": r"\2"}]}, "test.yaml: style.phrases[0]: replace refers to group 2"),
        ({"phrases": [{"replace": "x"}]}, "test.yaml: style.phrases[0]: expected exactly one of"),
        ({"words": {"two words": "x"}}, "test.yaml: style.words: 'two words' is not one word"),
        ({"emphasis": {"times": 9}}, "test.yaml: style.emphasis.times: expected a number from 2 to 5"),
        ({"fillers": {"intensity": 2}}, "test.yaml: style.fillers.intensity: expected a number from 0 to 1"),
        ({"fillers": {"closers": {"lines": ["no end"]}}}, "test.yaml: style.fillers: closers.lines"),
        ({"question_sufix": "?"}, "test.yaml: style.question_sufix: unknown key; did you mean 'question_suffix'?"),
    ],
)
def test_bad_style_rules_are_one_line_errors(style: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        rules(style)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
