"""Answers in the persona's words: from its facts, or from the memory of the user.

A persona file may write each answer itself (``facts.lines``); otherwise it is built
from the facts. Answers are plain English: the persona's style transform adds the
accent as it does for the LLM's replies.
"""

from __future__ import annotations

from collections.abc import Sequence

from companion.memory.extract import LIKE, NAME, NOTE
from companion.memory.intents import Intent
from companion.memory.store import Item
from companion.memory.text import flip_person
from companion.persona import FactLines, Persona


def join_words(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def fact_answer(persona: Persona, intent: Intent) -> str | None:
    """The persona's answer to a question about itself; None if its facts do not say."""
    f, lines = persona.facts, persona.facts.lines
    if intent is Intent.NAME:
        return lines.name or _sentence(f"My name is {persona.name}") + (f" I am {f.kind}." if f.kind else "")
    if intent is Intent.KIND:
        if lines.kind or not f.kind:
            return lines.kind or f.self_words or None
        return _sentence(f"I am {f.kind}" + ("" if f.human else ", not a human"))
    if intent is Intent.HOME:
        return lines.home or (_sentence(f"I am from {f.home}") if f.home else None)
    if intent is Intent.JOB:
        if lines.job or not f.job:
            return lines.job or None
        article = f.job.split()[0].lower() in ("a", "an", "the")
        return _sentence(f"I am {f.job}" if article else f"My job is {f.job}")
    if intent is Intent.BEST_FRIEND:
        if lines.best_friend or f.best_friend:
            return lines.best_friend or _sentence(f"My best friend is {f.best_friend}")
        return _sentence(f"My friends are {join_words(f.friends)}") if f.friends else None
    if intent is Intent.LIKES:
        return lines.likes or (_sentence(f"I like {join_words(f.likes)}") if f.likes else None)
    if intent is Intent.FAREWELL:
        return persona.farewell or None
    return None


def user_name(items: Sequence[Item]) -> str | None:
    names = [i.value for i in items if i.kind == NAME]
    return names[-1] if names else None


def likes_phrase(items: Sequence[Item], *, subject: str = "you") -> str:
    """'you love rock climbing and you like pizza' (most recent first, at most four)."""
    parts = []
    for item in reversed([i for i in items if i.kind == LIKE][-4:]):
        if item.verb.startswith("favorite"):
            owner = "your" if subject == "you" else "their"
            parts.append(f"{owner} {item.verb} is {item.value}")
        else:
            verb = item.verb or "like"
            parts.append(f"{subject} {verb if subject == 'you' else verb + 's'} {item.value}")
    return join_words(parts)


def user_answer(
    lines: FactLines | None, intent: Intent, items: Sequence[Item], *, new_name: str | None = None
) -> str | None:
    """The answer to a question about the user, or to a request about memory."""
    lines = lines or FactLines()
    unknown = lines.unknown_user
    if intent is Intent.USER_NAME:
        name = user_name(items)
        return _sentence(f"Your name is {name}") if name else unknown or "You have not told me your name yet."
    if intent is Intent.USER_LIKES:
        likes = likes_phrase(items)
        return _sentence(likes) if likes else unknown or "You have not told me what you like yet."
    if intent is Intent.USER_MEMORY:
        said = [_sentence(f"You asked me to remember that {flip_person(i.value)}") for i in items if i.kind == NOTE][
            -3:
        ]
        name, likes = user_name(items), likes_phrase(items)
        known = ([f"Your name is {name}."] if name else []) + ([_sentence(likes)] if likes else [])
        return " ".join(said + known) or unknown or "I do not remember anything about you yet."
    if intent is Intent.INTRODUCE:
        name = new_name or user_name(items)
        return f"Nice to meet you, {name}." if name else None
    if intent is Intent.REMEMBER:
        return "Okay, I will remember that."
    if intent is Intent.FORGET_ME:
        return lines.forget or "Okay. I have forgotten everything you told me."
    if intent is Intent.FORGET_THAT:
        return lines.forget or "Okay. I have forgotten that."
    return None
