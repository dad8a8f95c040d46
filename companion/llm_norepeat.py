"""A reply never copies a run of tokens the robot already said in this conversation.

A small model copies from its own context: on the bench's 25 turns SmolLM2-135M answered
seven questions in a row with the same two sentences ("I'm not sure, I don't have a
recipe for dinner tonight. But in my case, ..."), and each copy made the next likelier.
The repetition penalty only looks at the last 64 tokens, not at earlier replies.

:class:`NoRepeat` is a llama.cpp logits processor: after the last ``n - 1`` tokens of the
context, it forbids every token that would complete a run of ``n`` tokens found in an
earlier reply (n-gram blocking over the conversation). Phrases shorter than that ("I am
not sure") stay free; whole copied sentences cannot happen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class NoRepeat:
    """Logits processor: no run of ``n`` tokens from ``said`` (earlier replies, in tokens)."""

    def __init__(self, said: Iterable[Sequence[int]], n: int) -> None:
        if n < 2:
            raise ValueError(f"no-repeat runs need at least 2 tokens, got {n}")
        self.n = n
        self.next: dict[tuple[int, ...], set[int]] = {}
        for tokens in said:
            for i in range(len(tokens) - n + 1):
                self.next.setdefault(tuple(tokens[i : i + n - 1]), set()).add(tokens[i + n - 1])

    def __bool__(self) -> bool:
        return bool(self.next)

    def banned(self, context: Sequence[int]) -> set[int]:
        """Tokens that may not come next after ``context``."""
        if len(context) < self.n - 1:
            return set()
        return self.next.get(tuple(int(t) for t in context[len(context) - self.n + 1 :]), set())

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        banned = self.banned(input_ids)
        if banned:
            scores[np.fromiter(banned, dtype=np.int64)] = -np.inf
        return scores
