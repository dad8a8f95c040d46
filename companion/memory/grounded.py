"""GroundedChat: a Chat that stays true to the persona's facts and remembers the user.

It wraps any :class:`~companion.stages.Chat` (the embedded llama.cpp model, a remote
one) and, per turn:

1. learns from the user's words by rules (name, likes, "remember that ...");
2. answers the questions a fact or the memory answers directly, in the persona's
   words ("what's your name", "where are you from", "what is my name", "goodbye",
   "forget me"), without the model;
3. otherwise streams the model's reply sentence by sentence through a
   :class:`~companion.memory.check.ReplyCheck`, which replaces a sentence that
   contradicts the facts ("I am a human") by the fact;
4. keeps the facts and what it remembers in the model's system prompt, within a
   token budget. The prompt is rebuilt when a conversation starts (start-up,
   ``reset()``, a persona swap) and after "forget me", never mid-conversation: a
   changed system prompt makes llama.cpp evaluate the whole history again (measured
   ~6 s with a full 768-token history on 2 busy cores), while what the user just said
   is in that history anyway and memory questions are answered from the store.

Persona swaps: the loop calls ``reset(prompt)`` with the new persona's prompt; the
persona whose prompt that is is found with ``resolve`` (by default: the persona
files), or named beforehand with :meth:`set_persona`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from companion.memory.answers import fact_answer, user_answer, user_name
from companion.memory.check import ReplyCheck, Verdict
from companion.memory.extract import NAME, extract
from companion.memory.intents import MAX_WORDS, Intent, match_intent
from companion.memory.prompt import grounded_prompt
from companion.memory.settings import MemorySettings
from companion.memory.store import Item, MemoryStore
from companion.memory.text import normalize
from companion.messages import PersonaPrompt
from companion.persona import Persona
from companion.sentences import FIRST_CLAUSE_WORDS, SentenceSplitter, clean_for_speech
from companion.stages import Chat

_log = logging.getLogger(__name__)

Resolve = Callable[[PersonaPrompt], "Persona | None"]
_SELF = (Intent.NAME, Intent.KIND, Intent.HOME, Intent.JOB, Intent.BEST_FRIEND, Intent.LIKES, Intent.FAREWELL)


def prompt_of(persona: Persona) -> PersonaPrompt:
    """The prompt the loop gives the model for ``persona`` (as companion.app builds it)."""
    return PersonaPrompt(persona.system_prompt, tuple((e.user, e.assistant) for e in persona.examples))


@dataclass
class TurnInfo:
    """How the last turn was answered (for logs, the eval and the bench)."""

    route: str = ""
    """'intent' (answered from facts or memory) or 'llm'."""
    intent: Intent | None = None
    learned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What the reply check replaced or dropped."""
    overhead_ms: float = 0.0
    """Time spent in this wrapper (not waiting for the model)."""


class GroundedChat:
    """See the module docstring. ``store`` None: facts and intents only, no memory."""

    def __init__(
        self,
        inner: Chat,
        persona: Persona | None,
        store: MemoryStore | None,
        settings: MemorySettings | None = None,
        *,
        resolve: Resolve | None = None,
    ) -> None:
        self.inner = inner
        self.persona = persona
        self.store = store
        self.settings = settings or MemorySettings()
        self._resolve = resolve
        self._base = prompt_of(persona) if persona is not None else PersonaPrompt("")
        self._given: PersonaPrompt = self._base
        """The prompt the inner model has now (it was built with the persona's plain prompt)."""
        self._clear_history = False
        self._dirty = True
        """The model does not have the grounded prompt yet (at first: the facts are not in)."""
        self._next_persona: Persona | None = None
        self._from_inner = False
        self.session = uuid.uuid4().hex
        self._said: list[str] = []
        self._learned_ids: list[int] = []
        self.last = TurnInfo()

    # ---- who and whose memory ---------------------------------------------------------

    @property
    def scope(self) -> str:
        """Whose memory: 'shared', or the persona's file name (``memory.scope: persona``)."""
        if self.settings.scope == "persona" and self.persona is not None:
            return self.persona.path.stem if self.persona.path is not None else self.persona.name.lower()
        return "shared"

    def _addressed(self) -> tuple[str, ...]:
        """The robot's name and one-word wake phrases: dropped before matching ("rocky, where are you from")."""
        if self.persona is None:
            return ()
        return (*self.persona.name.lower().split(), *(w.lower() for w in self.persona.wake_phrases if " " not in w))

    def items(self) -> list[Item]:
        return self.store.items(self.scope) if self.store is not None else []

    def prompt(self) -> PersonaPrompt:
        """The system prompt the model should have: the persona's, plus facts and memory."""
        s = self.settings
        items, summaries = [], []
        if self.store is not None:
            items = self.store.items(self.scope)
            summaries = self.store.summaries(self.scope, limit=s.summaries_in_prompt, exclude=self.session)
        return grounded_prompt(
            self._base, self.persona, items, summaries, budget_tokens=s.prompt_tokens, with_facts=s.facts_in_prompt
        )

    def set_persona(self, persona: Persona) -> None:
        """Name the persona the next ``reset(prompt)`` switches to (skips the lookup)."""
        self._next_persona = persona

    # ---- Chat protocol ------------------------------------------------------------------

    def reply(self, text: str) -> Iterator[str]:
        t0 = time.perf_counter()
        info = self.last = TurnInfo()
        addressed = self._addressed()
        new_name = self._learn(text, addressed, info)
        intent = match_intent(text, addressed)
        if not self.settings.intents and intent not in (Intent.FORGET_ME, Intent.FORGET_THAT):
            intent = None  # "forget me" is a privacy request: it always works
        if intent is None and new_name and len(normalize(text, addressed).split()) <= MAX_WORDS:
            intent = Intent.INTRODUCE
        if new_name and intent in (Intent.USER_NAME, Intent.USER_LIKES, Intent.USER_MEMORY):
            intent = Intent.INTRODUCE  # "my name is Leo and what do I like" tells more than it asks
        answer = self._answer(intent, text, new_name) if intent is not None else None
        if answer is not None and new_name and intent is not Intent.INTRODUCE:
            answer = f"Nice to meet you, {new_name}. {answer}"
        if answer is not None:
            info.route, info.intent = "intent", intent
            self._from_inner = False
            info.overhead_ms = (time.perf_counter() - t0) * 1000.0
            yield answer
            return
        info.route = "llm"
        self._from_inner = True
        self._said.append(text)
        if self._dirty or self._clear_history:  # no idle moment came since start-up or "forget me"
            self._push()
        check = ReplyCheck(self.persona if self.settings.check_replies else None, user_name(self.items()))
        splitter = SentenceSplitter(first_clause_words=FIRST_CLAUSE_WORDS)  # the loop may say it early
        spoken = 0
        info.overhead_ms = (time.perf_counter() - t0) * 1000.0
        clause = _FirstClause(check)
        for piece in self.inner.reply(text):
            t = time.perf_counter()
            sentences = splitter.feed(piece)
            out = [clause.check(sentence, splitter.first_clause) for sentence in sentences]
            info.overhead_ms += (time.perf_counter() - t) * 1000.0
            for verdict in out:
                if verdict.problem and verdict.problem != "empty":
                    info.problems.append(verdict.problem)
                if verdict.text:
                    spoken += 1
                    yield verdict.text + " "
        for verdict in (clause.check(s, splitter.first_clause) for s in splitter.flush()):
            if verdict.problem and verdict.problem != "empty":
                info.problems.append(verdict.problem)
            if verdict.text:
                spoken += 1
                yield verdict.text
        if not spoken and info.problems and self.persona is not None:
            yield self.persona.fallback

    def _learn(self, text: str, addressed: tuple[str, ...], info: TurnInfo) -> str | None:
        if self.store is None:
            return None
        new_name = None
        for learned in extract(text, addressed):
            self._learned_ids.append(self.store.add(self.scope, learned))
            info.learned.append(f"{learned.kind}: {learned.value}")
            if learned.kind == NAME:
                new_name = learned.value
        if info.learned:
            _log.info("remembered %s", "; ".join(info.learned))
        return new_name

    def _answer(self, intent: Intent, text: str, new_name: str | None) -> str | None:
        if intent in _SELF:
            return fact_answer(self.persona, intent) if self.persona is not None else None
        if self.store is None:
            return None
        if intent is Intent.FORGET_ME:
            n = self.store.forget(self.scope)
            _log.info("forgot the user (%d records) on request", n)
            self._learned_ids.clear()
            self._said.clear()
            self._clear_history = True  # the model's turn history holds what they said too
        elif intent is Intent.FORGET_THAT and self._learned_ids:
            self.store.delete(self._learned_ids.pop())
        lines = self.persona.facts.lines if self.persona is not None else None
        answer = user_answer(lines, intent, self.items(), new_name=new_name)
        return answer

    def warm(self) -> None:
        """Give the model the grounded prompt now (at start-up), so the first turn finds it ready."""
        if self.prompt() != self._given:
            self._push()
        elif callable(warm := getattr(self.inner, "warm", None)):
            warm()

    def remember_spoken(self, spoken_reply: str) -> None:
        if self._from_inner:
            self.inner.remember_spoken(spoken_reply)
        self._save_summary()

    def _save_summary(self) -> None:
        if self.store is None or not self._said:
            return
        snippets = [" ".join(s.split()[:10]) for s in self._said[-4:]]
        self.store.save_summary(self.scope, self.session, 'the user said: "' + '"; "'.join(snippets) + '"')

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        if user is not None:
            if self.settings.intents and match_intent(user, self._addressed()) is not None:
                return  # answered without the model: nothing to get ready
            self.inner.prefill(user, wait=wait)
            return
        if self._dirty or self._clear_history:
            self._push()
        else:
            self.inner.prefill(None, wait=wait)

    def _push(self) -> None:
        """Give the model the current prompt (and drop its history after 'forget me')."""
        prompt = self.prompt()
        keep = not self._clear_history
        self.inner.reset(prompt if prompt != self._given else None, keep_memory=keep)
        self._given = prompt
        self._dirty = False
        self._clear_history = False

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        if prompt is not None and prompt != self._base:
            self._switch(prompt)
        if not keep_memory:
            self._save_summary()
            self.session = uuid.uuid4().hex
            self._said, self._learned_ids = [], []
        grounded = self.prompt()
        self.inner.reset(grounded if grounded != self._given else None, keep_memory=keep_memory)
        self._given = grounded
        self._dirty = False
        self._clear_history = self._clear_history and keep_memory

    def _switch(self, prompt: PersonaPrompt) -> None:
        nxt, self._next_persona = self._next_persona, None
        persona = nxt if nxt is not None and prompt_of(nxt) == prompt else None
        if persona is None and self._resolve is not None:
            persona = self._resolve(prompt)
        if persona is None:
            _log.warning("no persona file has this prompt: facts and intents off until the next persona")
        self.persona = persona
        self._base = prompt


class _FirstClause:
    """Checks a reply whose first sentence may come in two pieces (its first clause early).

    The check is about sentences: a first clause it rejects takes the rest of its
    sentence with it ("As an AI language model, | I can not."), and the rest is checked
    as part of the whole sentence, since the clause is already on its way to the voice.
    """

    def __init__(self, check: ReplyCheck) -> None:
        self._check = check
        self._pieces = 0
        self._clause: tuple[str, bool] | None = None
        """The first clause as written, and whether the check let it through."""

    def check(self, text: str, first_clause: str) -> Verdict:
        first, self._pieces = self._pieces == 0, self._pieces + 1
        if first and first_clause:
            verdict = self._check(text)
            self._clause = (text, not verdict.problem)
            return verdict
        if self._clause is None:
            return self._check(text)
        clause, passed = self._clause
        self._clause = None
        if not passed:
            return Verdict(None, "empty")  # its sentence was replaced or dropped already
        whole = self._check(f"{clause} {text}")
        if whole.problem:
            return whole
        rest = clean_for_speech(text)
        return Verdict(rest) if rest else Verdict(None, "empty")
