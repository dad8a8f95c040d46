"""Wake phrases: is this turn for the robot, and what was asked after the phrase."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9']+")


def strip_wake_phrase(text: str, phrases: tuple[str, ...]) -> str | None:
    """The request after a wake phrase at the start of ``text``; None if there is none.

    Matching ignores case and punctuation: "Hey, Rocky! What's up?" with the phrase
    "hey rocky" gives "What's up?".
    """
    words = [(m.group(0), m.end()) for m in _WORD.finditer(text.lower())]
    for phrase in sorted(phrases, key=len, reverse=True):
        want = _WORD.findall(phrase.lower())
        if want and [w for w, _ in words[: len(want)]] == want:
            rest = text[words[len(want) - 1][1] :]
            return rest.lstrip(" ,.!?;:-").strip()
    return None
