"""Cutting text into sentences: the one splitter of the project.

Used on streamed LLM text (the voice loop), on whole texts (``companion say``, the
control API) and by the style transform. A sentence ends at ``.``, ``!``, ``?`` (or
``…``) followed by white space, or at a line break. Decimal numbers ("3.5"), common
abbreviations ("Mr.", "e.g."), initials ("J. R.") and number abbreviations before a
number ("exit no. 5", "vol. 2") do not end a sentence. Punctuation with no words of
its own joins the sentence before it. Markdown bullets, asterisks and emoji are
stripped: they are for reading, not for speaking.

A sentence never grows past ``max_chars``: a longer run of text without a full stop
is cut at its last clause boundary (``,`` ``;`` ``:`` or a dash), else at a space, so
a synthesizer is never handed an unbounded input.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset("mr mrs ms dr prof sr jr st vs etc e.g i.e approx dept est inc ltd mt ft".split())
NUMBER_ABBREVIATIONS = frozenset("no vol fig pp p ch nr".split())
"""Abbreviations only before a number: "exit no. 5" (but "I said no. Then")."""

MAX_CHARS = 240
"""Default longest sentence handed on (characters)."""

_END = re.compile(r"([.!?…]+[\"'\u201d\u2019\u00bb)\]]*)(\s+)|(\n+)")
_UNSPEAKABLE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]|^\\s*(?:[-*•]|\\d+[.)])\\s+|[*_#`~]+", re.MULTILINE
)
_SPACES = re.compile(r"\s+")
_CLAUSE = re.compile(r"[,;:]\s|\s[-–—]+\s")


def clean_for_speech(text: str) -> str:
    """Drop markup and emoji, collapse white space."""
    return _SPACES.sub(" ", _UNSPEAKABLE.sub("", text)).strip()


def _has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _false_end(before: str, mark: str, after: str) -> bool | None:
    """True if the '.' is not a sentence end; None if that depends on text not yet seen."""
    if not mark.startswith("."):
        return False
    word = re.search(r"(\S+)$", before)
    if not word:
        return False
    w = word.group(1).lower().rstrip(".").lstrip("(\"'")
    if w in ABBREVIATIONS:
        return True
    if w in NUMBER_ABBREVIATIONS:
        if not after:
            return None
        return after[0].isdigit()
    return len(w) == 1 and w.isalpha()  # an initial


def _cut_long(text: str, max_chars: int) -> tuple[str, str]:
    """(first piece of at most ``max_chars``, rest) at the best boundary."""
    window = text[: max_chars + 1]
    cut = 0
    for m in _CLAUSE.finditer(window):
        if m.start() >= max_chars // 3:
            cut = m.start() + 1 if window[m.start()] in ",;:" else m.start()
    if not cut:
        cut = window.rfind(" ", max_chars // 3)
    if cut <= 0:
        cut = max_chars
    return text[:cut].strip(), text[cut:].lstrip(" ,;:-–—")


class SentenceSplitter:
    """Feed text pieces; get back each sentence once it is complete."""

    def __init__(self, min_chars: int = 2, max_chars: int = MAX_CHARS, *, clean: bool = True) -> None:
        self._buffer = ""
        self.min_chars = min_chars
        self.max_chars = max(16, max_chars)
        self.clean = clean
        """False: keep markup and emoji (the style transform's input is text, not speech yet)."""
        self._out: list[str] = []

    def _emit(self, text: str) -> None:
        sentence = clean_for_speech(text) if self.clean else _SPACES.sub(" ", text).strip()
        if not _has_words(sentence):
            if sentence and self._out:  # "Really\n?!": the marks belong to the sentence before
                self._out[-1] = f"{self._out[-1]} {sentence}"
            elif sentence and not self.clean:
                self._out.append(sentence)
            return
        while len(sentence) > self.max_chars:
            piece, sentence = _cut_long(sentence, self.max_chars)
            if _has_words(piece):
                self._out.append(piece)
        if len(sentence) >= self.min_chars and _has_words(sentence):
            self._out.append(sentence)

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        self._scan()
        out, self._out = self._out, []
        return out

    def _scan(self) -> None:
        start = 0
        for m in _END.finditer(self._buffer):
            if m.group(3) is None:
                false = _false_end(self._buffer[start : m.start()], m.group(1), self._buffer[m.end() :])
                if false is None:
                    break  # decide when the next word arrives
                if false:
                    continue
            end = m.end(1) if m.group(1) else m.start()
            self._emit(self._buffer[start:end])
            start = m.end()
        self._buffer = self._buffer[start:]
        while len(self._buffer) > 2 * self.max_chars:  # a run with no full stop: cut it
            head, self._buffer = _cut_long(self._buffer, self.max_chars)
            self._emit(head)

    def flush(self) -> list[str]:
        """The text is complete: whatever is left is the last sentence."""
        self._buffer += " "  # a pending "no. " decision: nothing follows
        self._scan()
        self._emit(self._buffer)
        self._buffer = ""
        out, self._out = self._out, []
        return out


def split_sentences(text: str, max_chars: int = MAX_CHARS, *, clean: bool = True) -> list[str]:
    """All the sentences of a complete text (``clean=False``: as written, markup and all)."""
    splitter = SentenceSplitter(min_chars=2 if clean else 1, max_chars=max_chars, clean=clean)
    splitter._buffer = text
    return splitter.flush()
