"""Cutting streamed LLM text into sentences as it arrives.

A sentence ends at ``.``, ``!``, ``?`` (or ``…``) followed by white space, or at a
line break. Decimal numbers ("3.5"), common abbreviations ("Mr.", "e.g.") and
initials ("J. R.") do not end a sentence. Markdown bullets, asterisks and emoji are
stripped: they are for reading, not for speaking.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "dept",
        "est",
        "fig",
        "inc",
        "ltd",
        "no",
        "vol",
        "mt",
        "ft",
    ]
)
_END = re.compile(r"([.!?…]+[\"')\]]*)(\s+)|(\n+)")
_UNSPEAKABLE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]|^\\s*(?:[-*•]|\\d+[.)])\\s+|[*_#`~]+", re.MULTILINE
)
_SPACES = re.compile(r"\s+")


def clean_for_speech(text: str) -> str:
    """Drop markup and emoji, collapse white space."""
    return _SPACES.sub(" ", _UNSPEAKABLE.sub("", text)).strip()


def _is_false_end(before: str, mark: str) -> bool:
    if not mark.startswith("."):
        return False
    word = re.search(r"(\S+)$", before)
    if not word:
        return False
    w = word.group(1).lower().rstrip(".")
    if w in ABBREVIATIONS:
        return True
    return len(w) == 1 and w.isalpha()  # an initial


class SentenceSplitter:
    """Feed text pieces; get back each sentence once it is complete."""

    def __init__(self, min_chars: int = 2) -> None:
        self._buffer = ""
        self.min_chars = min_chars

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        out: list[str] = []
        start = 0
        for m in _END.finditer(self._buffer):
            if m.group(3) is None and _is_false_end(self._buffer[start : m.start()], m.group(1)):
                continue
            end = m.end(1) if m.group(1) else m.start()
            sentence = clean_for_speech(self._buffer[start:end])
            start = m.end()
            if len(sentence) >= self.min_chars and any(c.isalnum() for c in sentence):
                out.append(sentence)
        self._buffer = self._buffer[start:]
        return out

    def flush(self) -> list[str]:
        """The reply is complete: whatever is left is the last sentence."""
        rest = clean_for_speech(self._buffer)
        self._buffer = ""
        return [rest] if len(rest) >= self.min_chars and any(c.isalnum() for c in rest) else []


def split_sentences(text: str) -> list[str]:
    """All the sentences of a complete text."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()
