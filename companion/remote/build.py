"""Each stage's backend from the config: the embedded model, or a remote with the embedded one as fallback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from companion.errors import UserError

if TYPE_CHECKING:
    from companion.config import Config
    from companion.messages import PersonaPrompt
    from companion.stages import Chat, SpeechToText

_log = logging.getLogger(__name__)


def _checked_uri(uri: str | None, key: str, engine: str) -> str:
    from companion.remote.wyoming_io import parse_tcp_uri

    if not uri:
        raise UserError(f"{key.split('.')[0]}.engine is '{engine}' but {key} is not set (tcp://HOST:PORT)")
    try:
        parse_tcp_uri(uri, key=key)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return uri


def build_stt(config: Config) -> SpeechToText:
    from companion.stt import FasterWhisperSTT

    s = config.stt
    if s.engine == "local":
        return FasterWhisperSTT(s)
    from companion.remote.fallback import FallbackSTT
    from companion.remote.wyoming_stt import WyomingSTT

    uri = _checked_uri(s.uri, "stt.uri", s.engine)
    remote = WyomingSTT(uri, language=s.language, connect_timeout_s=s.connect_timeout_s, deadline_s=s.deadline_s)
    local = FasterWhisperSTT(s) if s.fallback else None
    _log.info("stt: wyoming %s%s", uri, " (local fallback loaded)" if local else " (no local fallback)")
    return FallbackSTT(remote, local)


def build_chat(config: Config, prompt: PersonaPrompt) -> Chat:
    from companion.llm import LlamaChat

    s = config.llm
    if s.engine == "local":
        return LlamaChat(s, prompt)
    from companion.llm_memory import ChatMemory
    from companion.remote.fallback import FallbackChat
    from companion.remote.openai_chat import OpenAIChat

    local = LlamaChat(s, prompt) if s.fallback else None
    memory = local.chat_memory if local is not None else ChatMemory(s, prompt)
    render = local.prompt_tokens if local is not None else None
    remote = OpenAIChat(s, prompt, memory=memory, render=render)
    _log.info("llm: %s%s", remote.name, " (local fallback loaded)" if local else " (no local fallback)")
    return FallbackChat(remote, local)
