"""Text as speech-to-text delivers it, made regular for rules.

tiny.en transcripts are lowercase or oddly capitalised, lose punctuation and
apostrophes ("whats ur name"), and carry fillers ("uh", "so", "okay"). The intent and
memory rules match on :func:`normalize`'s output: lowercase words separated by
single spaces, contractions spelled out, fillers gone.
"""

from __future__ import annotations

import re

_CONTRACTIONS = {
    "what's": "what is",
    "whats": "what is",
    "who's": "who is",
    "whos": "who is",
    "where's": "where is",
    "wheres": "where is",
    "how's": "how is",
    "that's": "that is",
    "thats": "that is",
    "it's": "it is",
    "i'm": "i am",
    "im": "i am",
    "i've": "i have",
    "ive": "i have",
    "i'll": "i will",
    "i'd": "i would",
    "you're": "you are",
    "youre": "you are",
    "you've": "you have",
    "don't": "do not",
    "dont": "do not",
    "doesn't": "does not",
    "doesnt": "does not",
    "didn't": "did not",
    "didnt": "did not",
    "can't": "can not",
    "cant": "can not",
    "cannot": "can not",
    "won't": "will not",
    "name's": "name is",
    "ur": "your",
    "yer": "your",
    "u": "you",
    "ya": "you",
    "r": "are",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "favourite": "favorite",
    "fave": "favorite",
    "wat": "what",
    "wot": "what",
    "wher": "where",
}
_FILLERS = frozenset(
    "uh um umm uhm er erm ah hmm mm hey hi hello oh okay ok so well please just actually again now then"
    " and but yeah yes alright right".split()
)
"""Dropped at the start and the end of an utterance only ("so what do you do", "who are you then")."""
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lowercase words with contractions spelled out; punctuation dropped."""
    out: list[str] = []
    for w in _WORD.findall(text.lower().replace("\u2019", "'")):
        out.extend(_CONTRACTIONS.get(w, w).split())
    return out


def normalize(text: str, drop: tuple[str, ...] = ()) -> str:
    """Regular form of an utterance for rule matching.

    ``drop`` are words addressed to the robot (its name, wake words) that are removed
    wherever they stand alone ("rocky where are you from" -> "where are you from").
    """
    ws = [w for w in words(text) if w not in drop]
    while ws and ws[0] in _FILLERS:
        ws.pop(0)
    while ws and ws[-1] in _FILLERS:
        ws.pop()
    return " ".join(ws)


_FLIP = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "we": "you",
    "our": "your",
    "us": "you",
    "you": "I",
    "your": "my",
    "yours": "mine",
}


def flip_person(phrase: str) -> str:
    """First person to second ('my sister is ana' -> 'your sister is ana'), for answers."""
    out = []
    for w in phrase.split():
        out.append(_FLIP.get(w.lower(), w))
    text = " ".join(out)
    return re.sub(r"\bI are\b", "I am", re.sub(r"\byou was\b", "you were", text))


_THIRD = {"i": "they", "me": "them", "my": "their", "mine": "theirs", "myself": "themselves", "am": "are"}


def third_person(phrase: str) -> str:
    """The user's words about themselves, for the prompt ('my sister is ana' -> 'their sister is ana')."""
    return " ".join(_THIRD.get(w.lower(), w) for w in phrase.split())
