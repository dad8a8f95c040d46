"""The persona's facts and the memory of the user, as system-prompt text.

What is remembered goes into the prompt within a token budget (``memory.prompt_tokens``),
most useful first: the user's name, what they asked to be remembered, what they like,
then summaries of earlier conversations. Tokens are estimated from characters (the
Chat protocol has no tokenizer); :data:`CHARS_PER_TOKEN` is conservative for English.
"""

from __future__ import annotations

from collections.abc import Sequence

from companion.memory.answers import join_words, likes_phrase, user_name
from companion.memory.extract import DISLIKE, NOTE
from companion.memory.store import Item, Summary
from companion.memory.text import third_person
from companion.messages import PersonaPrompt
from companion.persona import Persona

CHARS_PER_TOKEN = 3.5


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN + 0.999)


def facts_text(persona: Persona) -> str:
    f = persona.facts
    parts = [f"You are {persona.name}."]
    if f.kind:
        parts.append(f"You are {f.kind}.")
    if not f.human:
        parts.append("You are not a human.")
    if f.home:
        parts.append(f"You are from {f.home}.")
    if f.job:
        parts.append(f"You are {f.job}." if f.job.split()[0].lower() in ("a", "an") else f"Your job is {f.job}.")
    if f.best_friend:
        parts.append(f"Your best friend is {f.best_friend}.")
    if f.likes:
        parts.append(f"You like {join_words(f.likes)}.")
    return " ".join(parts)


def memory_lines(items: Sequence[Item], summaries: Sequence[Summary]) -> list[str]:
    """Sentences about the user, most useful first."""
    out: list[str] = []
    name = user_name(items)
    if name:
        out.append(f"The user's name is {name}.")
    for item in reversed([i for i in items if i.kind == NOTE][-5:]):
        out.append(f"The user asked you to remember: {third_person(item.value)}.")
    likes = likes_phrase(items, subject="the user")
    if likes:
        out.append(likes[0].upper() + likes[1:] + ".")
    dislikes = [i.value for i in items if i.kind == DISLIKE][-3:]
    if dislikes:
        out.append(f"The user does not like {join_words(dislikes)}.")
    for s in summaries:
        out.append(f"Earlier, {s.text}.")
    return out


def grounded_prompt(
    base: PersonaPrompt,
    persona: Persona | None,
    items: Sequence[Item],
    summaries: Sequence[Summary],
    *,
    budget_tokens: int,
    with_facts: bool = True,
) -> PersonaPrompt:
    """``base`` with the facts (in the system text: they come with the persona) and as much
    memory as ``budget_tokens`` allows (in ``memory``: it changes between conversations)."""
    system = base.system + "\n" + facts_text(persona) if persona is not None and with_facts else base.system
    remembered: list[str] = []
    used = 0
    for line in memory_lines(items, summaries):
        cost = estimate_tokens(line) + 1
        if used + cost > budget_tokens:
            break
        remembered.append(line)
        used += cost
    return PersonaPrompt(system, base.examples, " ".join(remembered))
