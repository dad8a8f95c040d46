"""A check on each sentence the model writes: does it contradict who the robot is?

Run sentence by sentence as the reply streams (the loop speaks whole sentences
anyway, so holding a sentence until it ends costs no latency). A sentence that
claims the robot is a human, gives it another name or another home, or talks like a
chatbot ("as an AI language model") is replaced by the fact it got wrong, once, or
dropped. Regenerating would cost a second LLM call (hundreds of ms on the embedded
model); replacing costs nothing and says the truth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from companion.memory.answers import fact_answer
from companion.memory.intents import Intent
from companion.persona import Persona
from companion.sentences import clean_for_speech

_AI_TALK = re.compile(
    r"\b(?:as an? (?:ai|a\.i\.|artificial intelligence|language model|chatbot|assistant)|language model|"
    r"i am an? (?:ai|a\.i\.|artificial intelligence|chatbot|large language model|virtual assistant)|openai|chatgpt"
    r"|i do not have (?:a body|feelings|personal (?:experiences|opinions|feelings)))\b",
    re.IGNORECASE,
)
_HUMAN = re.compile(
    r"\b(?:i am|i'm|i was born|i'm just|i am just|as) (?:a |an |just a |only a |also a |fellow )?"
    r"(?:human(?: being)?|person|man|woman|boy|girl|earthling|guy)\b(?! (?:friend|named|called))",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b(?:my name is|my name's|i am called|call me|i'm called)\s+([A-Z][\w'-]*)", re.IGNORECASE)
_I_AM_NAME = re.compile(r"\b(?:i am|i'm)\s+([A-Z][a-z]+)\b")
_HOME = re.compile(
    r"\b(?:i am from|i'm from|i come from|i came from|i live (?:on|in)|i was born (?:on|in)"
    r"|my home (?:planet |world |town )?is"
    r"|my (?:home ?planet|homeworld|planet) (?:is|was)|i grew up (?:on|in))\s+([^.,!?;]+)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Verdict:
    text: str | None
    """The sentence to say (cleaned or replaced), or None to drop it."""
    problem: str = ""
    """Why it was changed: '', 'ai-talk', 'human', 'name', 'home'."""


class ReplyCheck:
    """Checks one reply's sentences against ``persona``'s facts (one object per reply)."""

    def __init__(self, persona: Persona | None, user_name: str | None = None) -> None:
        self.persona = persona
        self.user_name = user_name
        self._said: set[Intent] = set()
        f = persona.facts if persona is not None else None
        words = tuple(w.lower() for w in f.home_words) if f is not None else ()
        if f is not None and not words and f.home:
            words = tuple(w.lower() for w in re.findall(r"\b[A-Z]\w+", f.home)) or (f.home.lower(),)
        self._home_words = words

    def __call__(self, sentence: str) -> Verdict:
        text = clean_for_speech(sentence)
        if not text:
            return Verdict(None, "empty")
        if _AI_TALK.search(text):
            return Verdict(None, "ai-talk")
        p = self.persona
        if p is None:
            return Verdict(text)
        if not p.facts.human and _HUMAN.search(text) and not re.search(r"\bnot\b|\bno\b", text, re.IGNORECASE):
            return self._fix(Intent.KIND, "human")
        m = _NAME.search(text)
        if m and m.group(1).lower() not in p.name.lower().split():
            return self._fix(Intent.NAME, "name")
        m = _I_AM_NAME.search(text)
        if m and self.user_name and m.group(1).lower() == self.user_name.split()[0].lower():
            return self._fix(Intent.NAME, "name")
        m = _HOME.search(text)
        if m and self._home_words and not any(w in m.group(1).lower() for w in self._home_words):
            return self._fix(Intent.HOME, "home")
        return Verdict(text)

    def _fix(self, intent: Intent, problem: str) -> Verdict:
        """Say the fact instead, once per reply; drop repeats."""
        if intent in self._said or self.persona is None:
            return Verdict(None, problem)
        self._said.add(intent)
        return Verdict(fact_answer(self.persona, intent), problem)
