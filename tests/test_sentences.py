"""Streaming sentence splitting of LLM output."""

from __future__ import annotations

import pytest

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
