"""What the persona says for a text: the one path from written words to spoken words.

The voice loop (each streamed sentence of a reply), ``companion say``, the control
API and the Wyoming voice service all go through :func:`spoken_form` or
:func:`prepare` (a whole text) or :class:`StreamScript` (a reply as it is written):
cut into sentences by :mod:`companion.sentences`, then the persona's style
transform; a transform that fails or leaves nothing speaks the sentence plainly.

A reply's first sentence may be said in two pieces (see :class:`StreamScript`): its
first clause, styled as the start of a sentence, and then the rest, styled as part
of the whole sentence, so rules about a sentence's end ("..., question?") and start
("^do you") still see the sentence they were written for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from companion.persona import Persona
from companion.sentences import SentenceSplitter, split_sentences
from companion.style import Fillers

_log = logging.getLogger(__name__)


def spoken_form(persona: Persona, sentence: str, *, raw: bool = False) -> str:
    """``sentence`` as ``persona`` says it (``raw``: as written)."""
    if raw:
        return sentence
    try:
        out = persona.transform(sentence)
    except Exception:
        _log.exception("style transform failed on %r; speaking it plainly", sentence)
        return sentence
    return out if out.strip() else sentence


@dataclass(frozen=True)
class Script:
    """A text cut into sentences, as written and as the persona says them."""

    written: tuple[str, ...]
    spoken: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.written)

    @property
    def spoken_text(self) -> str:
        return " ".join(self.spoken)

    @property
    def changed(self) -> bool:
        """True when the persona's style changed the words."""
        return self.spoken != self.written


def prepare(persona: Persona, text: str, *, raw: bool = False) -> Script:
    """Cut ``text`` into sentences and give each the persona's style (unless ``raw``)."""
    written = tuple(split_sentences(text))
    return Script(written, tuple(spoken_form(persona, s, raw=raw) for s in written))


@dataclass(frozen=True)
class Piece:
    """A piece of a reply to say: a sentence, or part of one."""

    written: str
    spoken: str
    ends_sentence: bool = True
    """False for a first clause said before the rest of its sentence was written."""


def spoken_start(persona: Persona, clause: str, *, raw: bool = False) -> str:
    """The first clause of a sentence, said before the rest is known: the persona's style
    without its fillers (a filler's place depends on the whole sentence, and one tacked
    on at the end of the clause would end the sentence there)."""
    if persona.style.fillers.intensity > 0:
        persona = replace(persona, style=replace(persona.style, fillers=Fillers()))
    return spoken_form(persona, clause, raw=raw)


def spoken_rest(persona: Persona, clause: str, said: str, rest: str, *, raw: bool = False) -> str:
    """The rest of a sentence whose first clause ``clause`` was already said as ``said``.

    The whole sentence is styled (with fillers, else without), and what follows the
    words already said is the rest; if the style changed those words once it saw the
    whole sentence (a rule that spans the clause boundary), the rest is styled alone.
    """
    if raw:
        return rest
    whole = f"{clause} {rest}"
    for spoken in (spoken_form(persona, whole), spoken_start(persona, whole)):
        if spoken.startswith(said) and spoken[len(said) : len(said) + 1] in ("", " "):
            return spoken[len(said) :].strip()
    _log.debug("style of %r changed its first clause %r; styling the rest alone", whole, said)
    return spoken_form(persona, rest)


class StreamScript:
    """A reply as the model writes it, piece by piece, as written and as the persona says it.

    ``first_clause_words``: say the reply's first clause as soon as it has that many
    words (0: whole sentences only); see :mod:`companion.sentences`.
    """

    def __init__(self, persona: Persona, *, first_clause_words: int = 0, raw: bool = False) -> None:
        self.persona = persona
        self.raw = raw
        self._splitter = SentenceSplitter(first_clause_words=first_clause_words)
        self._clause: tuple[str, str] | None = None
        """The first clause as written and as said, while the rest of its sentence is awaited."""
        self.pieces = 0

    def feed(self, text: str) -> list[Piece]:
        return self._pieces(self._splitter.feed(text))

    def flush(self) -> list[Piece]:
        return self._pieces(self._splitter.flush())

    def _pieces(self, texts: list[str]) -> list[Piece]:
        out = []
        for text in texts:
            if self.pieces == 0 and self._splitter.first_clause:
                said = spoken_start(self.persona, text, raw=self.raw)
                self._clause = (text, said)
                out.append(Piece(text, said, ends_sentence=False))
            elif self._clause is not None:
                clause, said = self._clause
                self._clause = None
                out.append(Piece(text, spoken_rest(self.persona, clause, said, text, raw=self.raw)))
            else:
                out.append(Piece(text, spoken_form(self.persona, text, raw=self.raw)))
            self.pieces += 1
        return out
