"""Replies from an OpenAI-compatible chat server (llama.cpp server, Ollama, vLLM, ...).

Streaming ``POST {llm.url}/chat/completions`` (server-sent events) with the same
persona prompt, memory budget and reply caps as the local model: the prompt comes
from the shared :class:`~companion.llm_memory.ChatMemory`. The API key comes from the
environment variable ``llm.api_key_env`` or the file ``llm.api_key_file``; it is only
ever put in the ``Authorization`` header, and scrubbed from any error text.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence, Sized
from urllib.parse import urlparse

from companion.config import LlmSettings
from companion.errors import UserError
from companion.llm_memory import ChatMemory, Render
from companion.messages import PersonaPrompt
from companion.remote.health import RemoteError

_log = logging.getLogger(__name__)

MAX_LINE = 1024 * 1024


def load_api_key(settings: LlmSettings) -> str:
    """The key from ``llm.api_key_file`` or the ``llm.api_key_env`` variable ('' = none)."""
    if settings.api_key_file is not None:
        path = settings.api_key_file.expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UserError(f"llm.api_key_file: cannot read {path} ({exc.strerror or exc})") from None
    return os.environ.get(settings.api_key_env, "").strip() if settings.api_key_env else ""


def estimate_tokens(history: Sequence[tuple[str, str]], user: str | None, memory: ChatMemory) -> Sized:
    """A token count for a model whose tokenizer we do not have: ~4 bytes a token, 4 per message."""
    msgs = memory.messages(history, user)
    return range(sum(len(m["content"].encode("utf-8")) // 4 + 4 for m in msgs))


class OpenAIChat:
    """The :class:`~companion.stages.Chat` protocol on an OpenAI-compatible server."""

    def __init__(
        self,
        settings: LlmSettings,
        prompt: PersonaPrompt,
        *,
        memory: ChatMemory | None = None,
        render: Render | None = None,
    ) -> None:
        if not settings.url:
            raise UserError("llm.engine is 'openai' but llm.url is not set (e.g. http://HOST:8080/v1)")
        url = urlparse(settings.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise UserError(f"llm.url: expected http://HOST:PORT/v1, got {settings.url!r}")
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self._host, self._port, self._https = url.hostname, url.port, url.scheme == "https"
        self._path = url.path.rstrip("/") + "/chat/completions"
        self._key = load_api_key(settings)
        self.chat_memory = memory or ChatMemory(settings, prompt)
        self._render: Render = render or (lambda h, u: estimate_tokens(h, u, self.chat_memory))
        self.name = f"openai {self.url} model {settings.remote_model}"

    def __repr__(self) -> str:
        return f"OpenAIChat({self.url!r}, model={self.settings.remote_model!r})"  # never the key

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _connect(self) -> http.client.HTTPConnection:
        s = self.settings
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=s.connect_timeout_s)
        try:
            conn.connect()
        except TimeoutError:
            raise RemoteError(f"{self.url}: no connection in {s.connect_timeout_s:g} s") from None
        except OSError as exc:
            raise RemoteError(f"{self.url}: cannot connect ({exc.strerror or exc})") from None
        assert conn.sock is not None
        conn.sock.settimeout(s.deadline_s)
        return conn

    def _body(self, text: str) -> bytes:
        s = self.settings
        prompt_text = text
        budget = (s.context_tokens - s.max_reply_tokens) * 4
        if len(prompt_text) > budget:  # a monstrous single input: keep its end
            prompt_text = prompt_text[-budget:]
        self.chat_memory.fit(self._render, prompt_text, len(prompt_text.encode("utf-8")) // 4 + 1)
        body = {
            "model": s.remote_model,
            "messages": self.chat_memory.messages(self.chat_memory.turns, prompt_text),
            "stream": True,
            "max_tokens": s.max_reply_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "seed": s.seed,
        }
        return json.dumps(body).encode("utf-8")

    def reply(self, text: str) -> Iterator[str]:
        return self.reply_until(text, threading.Event())

    def reply_until(self, text: str, abandoned: threading.Event) -> Iterator[str]:
        """:meth:`reply`, but if ``abandoned`` is set by the time it ends, memory is not touched
        (a fallback took the turn over)."""
        pieces: list[str] = []
        try:
            yield from self._stream(text, pieces)
        finally:
            if not abandoned.is_set():
                self.chat_memory.add(text, "".join(pieces))

    def _stream(self, text: str, pieces: list[str]) -> Iterator[str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        t = time.perf_counter()
        conn = self._connect()
        try:
            try:
                conn.request("POST", self._path, body=self._body(text), headers=headers)
                resp = conn.getresponse()
            except TimeoutError:
                raise RemoteError(f"{self.url}: no answer in {self.settings.deadline_s:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise RemoteError(f"{self.url}: request failed ({self._scrub(str(exc))})") from None
            if resp.status != 200:
                detail = " ".join(resp.read(300).decode("utf-8", "replace").split())
                raise RemoteError(f"{self.url}: HTTP {resp.status} {resp.reason}: {self._scrub(detail)}")
            for piece in self._events(resp):
                if not pieces:
                    _log.debug("openai: first token in %.0f ms", (time.perf_counter() - t) * 1000)
                pieces.append(piece)
                yield piece
        finally:
            conn.close()

    def _events(self, resp: http.client.HTTPResponse) -> Iterator[str]:
        while True:
            try:
                line = resp.readline(MAX_LINE)
            except TimeoutError:
                raise RemoteError(f"{self.url}: the reply stalled for {self.settings.deadline_s:g} s") from None
            except (OSError, http.client.HTTPException) as exc:
                raise RemoteError(f"{self.url}: connection lost mid-reply ({exc})") from None
            if not line:
                raise RemoteError(f"{self.url}: the reply ended without [DONE]")
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, 'event:' lines
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            try:
                choice = json.loads(data)["choices"][0]
                piece = (choice.get("delta") or {}).get("content") or ""
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                raise RemoteError(f"{self.url}: sent something that is not a chat stream: {data[:60]!r}") from None
            if not isinstance(piece, str):
                raise RemoteError(f"{self.url}: a chat stream piece is not text")
            if piece:
                yield piece
            if choice.get("finish_reason"):
                return

    # ---- the rest of the Chat protocol -------------------------------------------------------

    def remember_spoken(self, spoken_reply: str) -> None:
        self.chat_memory.remember_spoken(spoken_reply)

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        """Nothing to do here: the server keeps its own prompt cache."""

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        self.chat_memory.reset(prompt, keep_memory=keep_memory)

    def backend_status(self) -> dict[str, object]:
        return {"backend": self.name, "health": "unknown"}

    def probe(self) -> float:
        """``GET {url}/models``: milliseconds to answer, or RemoteError (for ``companion doctor``)."""
        t = time.perf_counter()
        conn = self._connect()
        try:
            headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
            conn.request("GET", self._path.rsplit("/chat/", 1)[0] + "/models", headers=headers)
            resp = conn.getresponse()
            resp.read(64 * 1024)
            if resp.status != 200:
                raise RemoteError(f"{self.url}: GET /models: HTTP {resp.status} {resp.reason}")
        except TimeoutError:
            raise RemoteError(f"{self.url}: no answer in {self.settings.deadline_s:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"{self.url}: request failed ({self._scrub(str(exc))})") from None
        finally:
            conn.close()
        return (time.perf_counter() - t) * 1000
