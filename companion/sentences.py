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

With ``first_clause_words`` the first sentence of a text may come out in two pieces:
its first clause, as soon as a ``,`` ``;`` ``:`` or a dash follows at least that many
words (so the voice can start while the rest is still being written), and then the
rest of that sentence. :attr:`SentenceSplitter.first_clause` says when that happened.
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
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")

FIRST_CLAUSE_WORDS = 4
"""Shortest first clause (words) the voice loop says before its sentence ends. Four words
are ~1.2 s of speech or more: time for the model to write the rest of the sentence and
for Piper to voice it (no gap before the rest in any of 23 clause-split bench replies;
those answered 112 ms sooner, median of 10 paired turns). Piper's silence at the seam
(end + start of two utterances, 270-340 ms) is about the pause it makes at that comma
within the sentence (290-430 ms); shorter clauses ("Well," "Oh yes,") would make more
seams for less time gained."""


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

    def __init__(
        self, min_chars: int = 2, max_chars: int = MAX_CHARS, *, clean: bool = True, first_clause_words: int = 0
    ) -> None:
        self._buffer = ""
        self.min_chars = min_chars
        self.max_chars = max(16, max_chars)
        self.clean = clean
        """False: keep markup and emoji (the style transform's input is text, not speech yet)."""
        self.first_clause_words = first_clause_words
        """Hand on the text's first clause early once it has this many words (0: never)."""
        self.first_clause = ""
        """The first clause, if it was handed on before the rest of its sentence: then the
        piece after it is the rest of that sentence, not a sentence of its own."""
        self._started = False
        self._rest = False  # the next sentence is the rest of the first clause's: keep it however short
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
        if (len(sentence) >= self.min_chars or self._rest) and _has_words(sentence):
            self._out.append(sentence)  # the rest of a sentence whose first clause went early: any length
            self._rest = False

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        self._scan()
        if not self._out and not self._started and self.first_clause_words > 0:
            self._release_first_clause()
        return self._take()

    def _take(self) -> list[str]:
        out, self._out = self._out, []
        self._started = self._started or bool(out)
        return out

    def _release_first_clause(self) -> None:
        """Hand on the first clause once it has enough words (the sentence has not ended yet)."""
        for m in _CLAUSE.finditer(self._buffer, 0, self.max_chars):
            end = m.start() + 1 if self._buffer[m.start()] in ",;:" else m.end() - 1
            head = self._buffer[:end]
            if len(_WORD.findall(head)) >= self.first_clause_words:
                self._emit(head)
                if self._out:
                    self.first_clause = self._out[-1]
                    self._rest = True
                    self._buffer = self._buffer[end:].lstrip()
                return

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
        return self._take()


def split_sentences(text: str, max_chars: int = MAX_CHARS, *, clean: bool = True) -> list[str]:
    """All the sentences of a complete text (``clean=False``: as written, markup and all)."""
    splitter = SentenceSplitter(min_chars=2 if clean else 1, max_chars=max_chars, clean=clean)
    splitter._buffer = text
    return splitter.flush()
