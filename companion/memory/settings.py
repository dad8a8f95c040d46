"""Memory and grounding settings (the ``memory:`` section of config.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from companion.settings import non_negative, positive, setting


@dataclass(frozen=True)
class MemorySettings:
    enabled: bool = setting(True, doc="remember the user across restarts and ground replies in persona facts")
    scope: Literal["shared", "persona"] = setting("shared", doc="one memory for every persona, or one per persona")
    file: Path | None = setting(None, doc="SQLite file (mode 0600); null = memory.sqlite3 in the state directory")
    intents: bool = setting(True, doc="answer fact questions (name, home, 'what is my name', goodbye) directly")
    check_replies: bool = setting(True, doc="replace model sentences that contradict the persona's facts")
    facts_in_prompt: bool = setting(True, doc="add the persona's facts to the system prompt")
    prompt_tokens: int = setting(120, check=non_negative, doc="budget for remembered things in the prompt")
    summaries_in_prompt: int = setting(2, check=non_negative, doc="earlier conversations summarised in the prompt")
    max_items: int = setting(200, check=positive, doc="remembered facts kept per scope (oldest dropped)")
    max_summaries: int = setting(20, check=positive, doc="conversation summaries kept per scope")
