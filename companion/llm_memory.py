"""What every chat backend shares: the persona prompt and the conversation, within its budgets.

The local llama.cpp model (:mod:`companion.llm`) and a remote OpenAI-compatible server
(:mod:`companion.remote.openai_chat`) both build their prompts from one
:class:`ChatMemory`, so the persona prompt, the examples, the memory budget and the
trimming rule are the same code whichever model answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence, Sized

from companion.config import LlmSettings
from companion.messages import PersonaPrompt

_log = logging.getLogger(__name__)

TRIM_TO = 0.5
"""When memory outgrows its budget, drop old turns down to this fraction of it: the
history (and so the KV cache) then changes only every few turns, not every turn."""

Render = Callable[[Sequence[tuple[str, str]], "str | None"], Sized]
"""The whole prompt for (history, user) in a backend's own tokens (anything with a length)."""


class ChatMemory:
    """The persona prompt and the conversation so far, kept within the token budgets.

    One instance is shared by every backend of a conversation (the local model and a
    remote one), so a turn that falls back to the local model knows what the remote
    said. Token counts come from the backend's ``render``, so the budgets mean the same.
    """

    def __init__(self, settings: LlmSettings, prompt: PersonaPrompt) -> None:
        self.settings = settings
        self.prompt = prompt
        self.turns: list[tuple[str, str]] = []

    def messages(
        self, history: Sequence[tuple[str, str]], user: str | None, *, memory_last: bool = False
    ) -> list[dict[str, str]]:
        """The chat messages for (history, user).

        ``memory_last``: what is remembered of the user is a second system message after
        the examples, not the end of the first. It changes between conversations; placed
        before the examples it made a cold start re-read them (122 tokens, ~1 s on the
        2-core box) whenever the memory had changed since the KV cache was saved. Only
        for a template known to take a second system message (see ``LlamaChat``); a
        remote server's template may refuse one.
        """
        prompt = self.prompt if memory_last else self.prompt.with_memory_in_system()
        msgs = [{"role": "system", "content": prompt.system}]
        for u, a in prompt.examples:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        if prompt.memory:
            msgs.append({"role": "system", "content": prompt.memory})
        for u, a in history:
            msgs += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
        if user is not None:
            msgs.append({"role": "user", "content": user})
        return msgs

    def history_tokens(self, render: Render, history: Sequence[tuple[str, str]]) -> int:
        return len(render(history, None)) - len(render([], None))

    def trim(self, render: Render, reserve: int = 0) -> int:
        """Drop the oldest turns if memory is over budget; returns how many were dropped.

        ``reserve`` tokens are kept free for the next user message. Once over budget,
        memory is cut to :data:`TRIM_TO` of it, so this is rare.
        """
        s = self.settings
        prefix = len(render([], None))
        budget = min(s.memory_tokens, s.context_tokens - s.max_reply_tokens - reserve - prefix)
        if not self.turns or self.history_tokens(render, self.turns) <= budget:
            return 0
        target = int(budget * TRIM_TO)
        dropped = 0
        while self.turns and self.history_tokens(render, self.turns) > target:
            self.turns.pop(0)
            dropped += 1
        _log.debug("memory: dropped %d oldest turn(s) to stay within %d tokens", dropped, budget)
        return dropped

    def fit(self, render: Render, user: str, user_tokens: int) -> tuple[Sized, int]:
        """The prompt for ``user`` (as ``render`` makes it) with as much memory as the budgets
        allow, and how many turns were dropped. The caller cuts a monstrous single input."""
        s = self.settings
        dropped = self.trim(render, reserve=user_tokens + 16)
        prompt = render(self.turns, user)
        while len(prompt) + s.max_reply_tokens > s.context_tokens and self.turns:
            self.turns.pop(0)
            dropped += 1
            prompt = render(self.turns, user)
        return prompt, dropped

    def add(self, user: str, reply: str) -> None:
        reply = reply.strip()
        if reply:
            self.turns.append((user, reply))

    def remember_spoken(self, spoken_reply: str) -> None:
        """Replace the last reply with what was actually said (it may have been cut)."""
        if self.turns and spoken_reply:
            self.turns[-1] = (self.turns[-1][0], spoken_reply)

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> bool:
        """Forget the turns (unless ``keep_memory``); True when the prompt changed."""
        if not keep_memory:
            self.turns.clear()
        if prompt is not None and prompt != self.prompt:
            self.prompt = prompt
            return True
        return False


__all__ = ["TRIM_TO", "ChatMemory", "Render"]
