"""End of turn by meaning: how long to wait, from what the user has said so far.

During a pause the loop transcribes a draft of the turn (tiny.en; punctuation may be
missing or wrong: Whisper often ends an unfinished draft with a full stop). A policy
reads that draft and says how much silence, in all, the pause needs before the turn is
over: a complete question or statement ends after a short silence, an unfinished one
("I want to tell you about my") waits longer. The turn detector clamps the answer to
``vad.min_end_silence_ms``..``vad.max_end_silence_ms`` (see :meth:`TurnDetector.set_hold`).

- :class:`SyntaxEnd`: rules on the draft's last words (conjunctions, prepositions,
  determiners, auxiliaries, fillers) and its final punctuation; free.
- :class:`LlmEnd`: the already-loaded chat LLM's probability that the user's message
  ends here: its end-of-message token (ChatML's ``<|im_end|>``, as LiveKit's turn
  detector reads from a fine-tuned SmolLM2) or a sentence-final "." "?" "!" next, after
  the words without Whisper's punctuation; one short prefill per draft.
- :class:`SyntaxThenLlm`: the rules where they are sure, the LLM for the rest.
- :class:`FixedEnd`: always the same silence (the old behaviour, for comparison).

Whatever the policy, a pause after a last word the STT barely heard (see
:class:`DoubtfulEnding`) waits at least the unsure hold.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from typing import Protocol

from companion.config import VadSettings
from companion.messages import HeardText

_log = logging.getLogger(__name__)


class EndOfTurn(Protocol):
    """A policy for how long a pause must last before the turn is over."""

    name: str

    def hold_ms(self, draft: str) -> int:
        """Silence in all (ms after the end of speech) the pause needs, given the draft text."""
        ...


# Words after which an English sentence is almost never over.
_CONJUNCTIONS = "and but or nor so because if when while whereas although though unless until since whether than"
_PREPOSITIONS = (
    "about of to for with in on at from by into onto over under after before between through "
    "without around near across against along among behind beside towards toward upon via during"
)
_DETERMINERS = "the a an my your his her its our their these those some every each another such"
_LEADS = "where who whom whose which let also just um uh er erm hmm uhm mm ah"
_SUBJECTS = "i we they he she"
UNFINISHED_WORDS = frozenset(" ".join((_CONJUNCTIONS, _PREPOSITIONS, _DETERMINERS, _LEADS, _SUBJECTS)).split())
"""A draft ending in one of these (or a filler) is taken as unfinished."""

AUXILIARIES = frozenset(
    "is are was were am be been being does did have has had "
    "i'm you're we're they're he's she's it's that's there's i've you've we've i'd i'll you'll we'll "
    "don't doesn't didn't isn't aren't wasn't".split()
)
"""Unfinished at the end ("I want to know what is"), unless a pronoun comes just before
("what time it is")."""

MODALS = frozenset("can could will would should shall may might must can't won't cannot".split())
"""Unfinished at the end even after a pronoun: "we could" leads on far more often than
"yes I can" ends a turn."""

OPENERS = frozenset("hey hi hello hiya howdy yo oi excuse pardon listen".split())
"""A draft of at most :data:`OPENER_WORDS` words that starts with one of these ("Hey Rocky.",
"Hello robot.", "Excuse me.") is how people open a turn before what they want: the pause
after it is not the end, though Whisper ends it with a full stop."""
OPENER_WORDS = 3

_PRONOUNS = frozenset("i you we they he she it this that there".split())

UNFINISHED_ENDINGS = frozenset(
    ("i want", "i think", "i mean", "you know", "going to", "want to", "kind of", "sort of", "i was", "and then")
)
"""Two-word endings that usually lead on."""

_WORD = re.compile(r"[a-z']+")


def _last_words(text: str, n: int) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))[-n:]


class FixedEnd:
    """The same silence whatever was said."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.name = f"fixed {hold} ms"

    def hold_ms(self, draft: str) -> int:
        return self.hold


class SyntaxEnd:
    """Rules on the draft's last words and final punctuation."""

    name = "syntax"

    def __init__(self, short_ms: int, long_ms: int, *, unsure_ms: int | None = None) -> None:
        self.short_ms = short_ms
        self.long_ms = long_ms
        self.unsure_ms = (short_ms + long_ms) // 2 if unsure_ms is None else unsure_ms

    def verdict(self, draft: str) -> str:
        """'unfinished', 'complete', 'unsure' or 'opening' (a greeting or a call alone, see
        :data:`OPENERS`: held as 'unsure')."""
        text = draft.strip()
        words = _last_words(text, 2)
        if not words:
            return "unsure"
        opening = _last_words(text, OPENER_WORDS + 1)
        if len(opening) <= OPENER_WORDS and opening[0] in OPENERS:
            return "opening"
        if text.endswith(("...", "\u2026", ",", "-", ":", ";")):
            return "unfinished"
        last, before = words[-1], (words[0] if len(words) == 2 else "")
        if " ".join(words) in UNFINISHED_ENDINGS or last in UNFINISHED_WORDS:
            return "unfinished"
        if last in MODALS or (last in AUXILIARIES and before not in _PRONOUNS):
            return "unfinished"
        if text.endswith(("?", "!", ".")):
            return "complete"
        return "unsure"

    def hold_ms(self, draft: str) -> int:
        verdict = self.verdict(draft)
        return self.long_ms if verdict == "unfinished" else self.short_ms if verdict == "complete" else self.unsure_ms


def normalise_for_llm(text: str) -> str:
    """What the LLM is shown: the draft's words, without Whisper's final punctuation.

    Whisper puts a full stop after unfinished drafts too; the model is asked whether the
    words themselves end here (the end token or a full stop would come next).
    """
    return re.sub(r"[\s.,!?;:\u2026-]+$", "", text.strip())


LIKELY = 10**-1.0
"""P(the message is over) (of the words without final punctuation; see
``LlamaChat.end_of_turn_probability``) at or above which the pause is short.
SmolLM2-135M-Instruct gave finished drafts 10^0..10^-2 (mostly above 10^-0.7) and
unfinished ones 10^-1.2..10^-5 on the pause fixtures, across three persona prompts;
the end token alone spread finished drafts over 10^-1..10^-9. At 10^-0.5 live
questions at 10^-0.6..-0.7 ("Can you tell me a joke", "What is the weather like
outside") waited 257-328 ms; at 10^-1 (the middle of the gap) 200, and on the pause
fixtures the same turns are cut (wait p95 446 -> 404 ms)."""
UNLIKELY = 10**-2.0
"""...at or below which it is long; in between the hold follows log(p)."""


class LlmEnd:
    """The chat LLM's probability that the user's message is over after the draft's words.

    ``probability`` is e.g. :meth:`companion.llm.LlamaChat.end_of_turn_probability`.
    At or above ``likely`` the pause is short; at or below ``unlikely`` it is long; in
    between, the hold moves with log(p).
    """

    name = "llm"

    def __init__(
        self,
        probability: Callable[[str], float],
        short_ms: int,
        long_ms: int,
        *,
        likely: float = LIKELY,
        unlikely: float = UNLIKELY,
    ) -> None:
        if not 0 < unlikely < likely <= 1:
            raise ValueError(f"end of turn: need 0 < unlikely ({unlikely}) < likely ({likely}) <= 1")
        self.probability = probability
        self.short_ms = short_ms
        self.long_ms = long_ms
        self.likely = likely
        self.unlikely = unlikely

    def hold_for(self, p: float) -> int:
        if p >= self.likely:
            return self.short_ms
        if p <= self.unlikely:
            return self.long_ms
        x = (math.log(p) - math.log(self.unlikely)) / (math.log(self.likely) - math.log(self.unlikely))
        return round(self.long_ms + x * (self.short_ms - self.long_ms))

    def hold_or_none(self, draft: str) -> int | None:
        """The hold, or None when the model could not say in time (its ``probability``
        raised TimeoutError, e.g. :class:`companion.llm.LlmBusy`: busy or starved of CPU)."""
        text = normalise_for_llm(draft)
        if not text:
            return (self.short_ms + self.long_ms) // 2
        try:
            p = self.probability(text)
        except TimeoutError as exc:
            _log.debug("end of turn: %s; deciding without the model", exc)
            return None
        _log.debug("end of turn p=%.3f for %r", p, text)
        return self.hold_for(p)

    def hold_ms(self, draft: str) -> int:
        hold = self.hold_or_none(draft)
        return (self.short_ms + self.long_ms) // 2 if hold is None else hold


class SyntaxThenLlm:
    """The rules where they are sure the user is not done; the LLM decides the rest
    (and the rules alone when the LLM cannot answer in time)."""

    name = "syntax+llm"

    def __init__(self, syntax: SyntaxEnd, llm: LlmEnd) -> None:
        self.syntax = syntax
        self.llm = llm

    def hold_ms(self, draft: str) -> int:
        verdict = self.syntax.verdict(draft)
        if verdict == "unfinished":
            return self.syntax.long_ms
        if verdict == "opening":
            return self.syntax.unsure_ms
        hold = self.llm.hold_or_none(draft)
        return self.syntax.hold_ms(draft) if hold is None else hold


DOUBTFUL_WORD_P = 0.3
"""A draft whose last word the STT gave less than this probability is not trusted to end
the turn. Measured on the fixtures' drafts (tiny.en): words heard right at a pause scored
0.5-1.0; below 0.3 were half-words and guesses ("I need to call my brother Biclos" for
"...brother because", p 0.05) and misheard last words of finished turns ("...songs about
the room", 0.20)."""


class DoubtfulEnding:
    """Wraps a policy: a draft whose last word the STT was unsure of (``HeardText.last_word_p``
    below ``below``) waits at least ``floor_ms``.

    Whisper fills a pause after an unfinished phrase with a plausible guess that often
    reads as complete; the guess shows in its low probability. Rules and the LLM judge
    the words as given, so the doubt is applied here, once, for all of them.
    """

    def __init__(self, policy: EndOfTurn, floor_ms: int, *, below: float = DOUBTFUL_WORD_P) -> None:
        self.policy = policy
        self.floor_ms = floor_ms
        self.below = below
        self.name = policy.name

    def hold_ms(self, draft: str) -> int:
        hold = self.policy.hold_ms(draft)
        p = draft.last_word_p if isinstance(draft, HeardText) else None
        if p is not None and p < self.below and hold < self.floor_ms:
            _log.debug("end of turn: last word of %r heard at p=%.2f; holding %d ms", draft, p, self.floor_ms)
            return self.floor_ms
        return hold


def make_policy(settings: VadSettings, probability: Callable[[str], float] | None = None) -> EndOfTurn:
    """The policy ``vad.end_of_turn`` names.

    The LLM ones need ``probability`` (e.g. ``LlamaChat.end_of_turn_probability``);
    without it (a chat server that cannot say) they fall back to the rules, with a warning.
    """
    short, long = settings.min_end_silence_ms, settings.max_end_silence_ms
    kind = settings.end_of_turn
    if kind == "silence":
        return FixedEnd(settings.end_silence_ms)
    syntax = SyntaxEnd(short, long)
    policy: EndOfTurn
    if kind == "syntax":
        policy = syntax
    elif probability is None:
        _log.warning("vad.end_of_turn: %s needs the local LLM; using the syntax rules alone", kind)
        policy = syntax
    else:
        llm = LlmEnd(probability, short, long)
        policy = llm if kind == "llm" else SyntaxThenLlm(syntax, llm)
    return DoubtfulEnding(policy, syntax.unsure_ms)
