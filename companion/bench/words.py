"""Comparing what was said with what was heard: normalised words and word error rate."""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_words(match: re.Match[str]) -> str:
    n = int(match.group())
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    return " ".join(_ONES[int(d)] for d in match.group())


def normalise(text: str) -> str:
    """Lower-case words without punctuation, one space apart; numbers below 100 as words.

    Apostrophes inside words stay ("what's"); hyphens and other punctuation split words.
    """
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\d+", _number_words, text)
    text = re.sub(r"[^a-z0-9']+", " ", text)
    words = (w.strip("'") for w in text.split())
    return " ".join(w for w in words if w)


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after :func:`normalise`.

    Errors divided by the reference's word count; an empty reference gives 0.0 for an empty
    hypothesis and 1.0 otherwise. May exceed 1.0 when the hypothesis has extra words.
    """
    ref = normalise(reference).split()
    hyp = normalise(hypothesis).split()
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def words_right(reference: str, hypothesis: str) -> int:
    """How many of the reference's words were heard, in order (the longest common subsequence of
    the two after :func:`normalise`): "wait stop" of "Wait, stop. What is your name?" is 2."""
    ref = normalise(reference).split()
    hyp = normalise(hypothesis).split()
    previous = [0] * (len(hyp) + 1)
    for ref_word in ref:
        current = [0]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(previous[j - 1] + 1 if ref_word == hyp_word else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]
