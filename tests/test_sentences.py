"""Streaming sentence splitting of LLM output."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.sentences import SentenceSplitter, clean_for_speech, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Wow! That is great!! Really?", ["Wow!", "That is great!!", "Really?"]),
        ("It costs 3.50 dollars. Cheap.", ["It costs 3.50 dollars.", "Cheap."]),
        ("Ask Dr. Smith. He knows.", ["Ask Dr. Smith.", "He knows."]),
        ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
        ("Use tools, e.g. a hammer. Done.", ["Use tools, e.g. a hammer.", "Done."]),
        ("First line\nSecond line", ["First line", "Second line"]),
        ('He said "go." Then left.', ['He said "go."', "Then left."]),
        ("Wait... what?", ["Wait...", "what?"]),
        ("No ending punctuation", ["No ending punctuation"]),
        ("- item one\n- item two", ["item one", "item two"]),
        ("**Bold** move 🚀. Next.", ["Bold move .", "Next."]),
        ("...", []),
        ("", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_sentences_come_out_as_soon_as_they_are_complete():
    s = SentenceSplitter()
    assert s.feed("Hello") == []
    assert s.feed(" there.") == []  # might still be "there.5" or an abbreviation
    assert s.feed(" How") == ["Hello there."]
    assert s.feed(" are you?") == []
    assert s.flush() == ["How are you?"]
    assert s.flush() == []


def test_token_by_token_equals_whole_text():
    text = "I am Rocky. I like to build things! Do you build, question? Yes. 3.14 is pi."
    s = SentenceSplitter()
    out: list[str] = []
    for ch in text:
        out += s.feed(ch)
    out += s.flush()
    assert out == split_sentences(text)


def test_clean_for_speech_strips_markup():
    assert clean_for_speech("## Title\n* `code`  and   _this_") == "Title code and this"


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Take exit no. 5 now.", ["Take exit no. 5 now."]),
        ("I said no. Then left.", ["I said no.", "Then left."]),
        ("See vol. 2 please. Thanks.", ["See vol. 2 please.", "Thanks."]),
        ("Really\n?!", ["Really ?!"]),
    ],
)
def test_number_abbreviations_and_stray_marks(text, sentences):
    assert split_sentences(text) == sentences


def test_a_run_without_a_full_stop_is_cut_into_bounded_sentences_at_clauses():
    text = ", ".join(["the robot walks to the window"] * 40)
    out = split_sentences(text, max_chars=120)
    assert all(len(s) <= 120 for s in out)
    assert " ".join(out).replace(",", "").split() == text.replace(",", "").split()
    assert all(not s.startswith(",") for s in out)


def test_streaming_bounds_memory_for_endless_text():
    s = SentenceSplitter(max_chars=100)
    out: list[str] = []
    for _ in range(2000):
        out += s.feed("word ")
        assert len(s._buffer) <= 2 * 100 + 5
    out += s.flush()
    assert sum(len(x.split()) for x in out) == 2000


def _stream(text: str, words: int) -> tuple[list[str], str]:
    s = SentenceSplitter(first_clause_words=words)
    out: list[str] = []
    for token in text.split(" "):  # as an LLM streams: a word and its space at a time
        out += s.feed(token + " ")
    return out + s.flush(), s.first_clause


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        (
            "Well I think that is right, but ask Grace. She knows.",
            ["Well I think that is right,", "but ask Grace.", "She knows."],
        ),
        ("Yes, I think that is right, but ask Grace.", ["Yes, I think that is right,", "but ask Grace."]),
        ("Here is the plan for today: we fly to the ship.", ["Here is the plan for today:", "we fly to the ship."]),
        ("I was going to say — never mind.", ["I was going to say —", "never mind."]),
        ("Take exit no. 5 now, then turn left.", ["Take exit no. 5 now,", "then turn left."]),
        ("Take exit no. 5 now.", ["Take exit no. 5 now."]),
        ("It costs 3,000 dollars or so.", ["It costs 3,000 dollars or so."]),
        ("Hello, friend.", ["Hello, friend."]),
        (
            "Short one. Then a much longer sentence, with a clause.",
            ["Short one.", "Then a much longer sentence, with a clause."],
        ),
    ],
)
def test_the_first_clause_comes_out_early_once_it_has_enough_words(text, pieces):
    out, first_clause = _stream(text, 4)
    assert out == pieces
    assert first_clause == (pieces[0] if not pieces[0].endswith((".", "?", "!")) else "")
    assert " ".join(out) == " ".join(split_sentences(text))  # no word lost, none twice


def test_the_first_clause_is_handed_on_as_soon_as_the_next_word_starts():
    s = SentenceSplitter(first_clause_words=3)
    assert s.feed("One two three,") == []  # "3,000"? a clause needs the space after its mark
    assert s.feed(" four") == ["One two three,"]
    assert s.first_clause == "One two three,"
    assert s.feed(" five, six seven, eight.") == []
    assert s.flush() == ["four five, six seven, eight."]  # later clauses wait for their sentence


def test_without_first_clause_words_sentences_stay_whole():
    out, first_clause = _stream("Well I think that is right, but ask Grace.", 0)
    assert out == ["Well I think that is right, but ask Grace."] and first_clause == ""


def test_a_first_clause_longer_than_a_sentence_may_be_is_cut_as_before():
    text = "word " * 100 + ", and more."
    out, first_clause = _stream(text, 4)
    assert first_clause == ""
    assert all(len(s) <= 240 for s in out)


@given(
    words=st.lists(
        st.tuples(
            st.sampled_from(["robot", "I'm", "Grace", "3,000", "no.", "5", "ship"]),
            st.sampled_from(["", ",", ";", " —", ".", "?"]),
        ),
        min_size=1,
        max_size=30,
    ),
    first=st.integers(min_value=0, max_value=6),
    cuts=st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=50),
)
def test_a_first_clause_said_early_loses_and_repeats_no_word(words, first, cuts):
    text = " ".join(w + mark for w, mark in words)

    def stream(first_clause_words: int) -> tuple[list[str], str]:
        s = SentenceSplitter(first_clause_words=first_clause_words)
        out: list[str] = []
        at = 0
        for n in itertools.cycle(cuts):  # the text in pieces of varying length, as a model streams it
            if at >= len(text):
                break
            out += s.feed(text[at : at + n])
            at += n
        return out + s.flush(), s.first_clause

    early, clause = stream(first)
    whole, _ = stream(0)
    assert " ".join(early).split() == " ".join(whole).split()
    if clause:
        assert early[0] == clause and len(early) == len(whole) + 1
        assert f"{early[0]} {early[1]}" == whole[0]
    else:
        assert early == whole


def test_the_rest_after_an_early_first_clause_is_kept_however_short():
    """ "robot, 5": after "robot," went early, "5" is the rest of its sentence, not a fragment."""
    s = SentenceSplitter(first_clause_words=1)
    out = [piece for ch in "robot, 5" for piece in s.feed(ch)] + s.flush()
    assert out == ["robot,", "5"]
