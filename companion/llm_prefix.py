"""The persona prefix's KV cache, kept on disk between runs (llama.cpp's state file).

Start-up evaluates the persona prompt (system prompt, examples, facts, memory: ~300
tokens) so the first turn finds it in the KV cache. That is ~1 s of both cores on a
Pi-class machine, and much more while anything else runs. The state after it is saved;
the next start loads it (a few MB, a few ms) and evaluates only the tokens that changed
since (a new memory summary changes the end of the prompt, not its start).

A state file is only read back by the same model file, context size and KV cache types
(they are in its name); llama.cpp rejects one it cannot use, and then the prompt is
simply evaluated again.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/companion/llm`` (the systemd unit points it at the service's CacheDirectory)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "companion" / "llm"


class PrefixCache:
    """One state file per model and context settings, holding the last persona prefix."""

    def __init__(self, directory: Path, model: Path, **settings: object) -> None:
        import llama_cpp

        stat = model.stat()
        key = repr(
            (str(model.resolve()), stat.st_size, stat.st_mtime_ns, llama_cpp.__version__, sorted(settings.items()))
        )
        self.path = directory / f"prefix-{hashlib.sha256(key.encode()).hexdigest()[:16]}.state"

    def restore(self, llm: Any) -> int:
        """Load the saved prefix into ``llm`` (a ``llama_cpp.Llama``); the number of tokens it holds (0: none)."""
        import llama_cpp

        if not self.path.is_file():
            return 0
        n_ctx = llm.n_ctx()
        tokens = (llama_cpp.llama_token * n_ctx)()
        count = ctypes.c_size_t(0)
        try:
            ok = llama_cpp.llama_state_load_file(
                llm._ctx.ctx, str(self.path).encode(), tokens, n_ctx, ctypes.byref(count)
            )
        except OSError as exc:
            ok = False
            _log.debug("cannot read %s: %s", self.path, exc)
        if not ok or not 0 < count.value <= n_ctx:
            _log.info("LLM prefix cache %s not usable; evaluating the prompt again", self.path)
            llm.reset()
            llm._ctx.kv_cache_clear()
            return 0
        n = count.value
        llm.input_ids[:n] = tokens[:n]
        llm.n_tokens = n
        return n

    def save(self, llm: Any) -> None:
        """Write ``llm``'s evaluated tokens and KV cache (written aside, then renamed into place)."""
        import llama_cpp

        n = llm.n_tokens
        if n <= 0:
            return
        tokens = (llama_cpp.llama_token * n)(*llm.input_ids[:n])
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not llama_cpp.llama_state_save_file(llm._ctx.ctx, str(tmp).encode(), tokens, n):
                raise OSError("llama.cpp could not write it")
            os.replace(tmp, self.path)
        except OSError as exc:
            _log.warning("cannot save the LLM prefix cache %s: %s", self.path, exc)
            tmp.unlink(missing_ok=True)
