"""Wiring: wrap the daemon's Chat in a GroundedChat according to ``memory:`` settings."""

from __future__ import annotations

import logging
from pathlib import Path

from companion.config import Config
from companion.memory.grounded import GroundedChat, prompt_of
from companion.memory.store import MemoryStore
from companion.messages import PersonaPrompt
from companion.persona import Persona, list_personas, load_persona_file
from companion.settings import ConfigError
from companion.stages import Chat

_log = logging.getLogger(__name__)


def memory_path(config: Config) -> Path:
    return config.memory.file or config.resolved_state_dir() / "memory.sqlite3"


def open_store(config: Config) -> MemoryStore:
    m = config.memory
    return MemoryStore(memory_path(config), max_items=m.max_items, max_summaries=m.max_summaries)


class PersonaFinder:
    """Which persona a prompt belongs to: the persona files, loaded again when they change."""

    def __init__(self, extra: Path | None = None) -> None:
        self.extra = extra
        self._cache: dict[Path, tuple[float, Persona | None]] = {}

    def __call__(self, prompt: PersonaPrompt) -> Persona | None:
        for path in list_personas(self.extra).values():
            persona = self._load(path)
            if persona is not None and prompt_of(persona) == prompt:
                return persona
        return None

    def _load(self, path: Path) -> Persona | None:
        mtime = path.stat().st_mtime
        cached = self._cache.get(path)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, load_persona_file(path, self.extra))
            except ConfigError as exc:
                _log.debug("skipping persona file %s: %s", path, exc)
                cached = (mtime, None)
            self._cache[path] = cached
        return cached[1]


def ground(config: Config, persona: Persona, chat: Chat, *, warm: bool = True) -> Chat:
    """``chat`` grounded in ``persona``'s facts and the user's memory (or ``chat`` if memory is off).

    ``warm``: evaluate the (grounded) persona prompt now, once.
    """
    if not config.memory.enabled:
        if warm and callable(warm_up := getattr(chat, "warm", None)):
            warm_up()
        return chat
    grounded = GroundedChat(
        chat, persona, open_store(config), config.memory, resolve=PersonaFinder(config.personas_dir)
    )
    if warm:
        grounded.warm()
    return grounded
