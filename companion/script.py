"""What the persona says for a text: the one path from written words to spoken words.

The voice loop (each streamed sentence of a reply), ``companion say``, the control
API and the Wyoming voice service all go through :func:`spoken_form` or
:func:`prepare`: cut into sentences by :mod:`companion.sentences`, then the
persona's style transform; a transform that fails or leaves nothing speaks the
sentence plainly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from companion.persona import Persona
from companion.sentences import split_sentences

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
