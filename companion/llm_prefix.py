"""The persona prefix's KV cache, kept on disk between runs (llama.cpp's state file).

Start-up evaluates the persona prompt (system prompt, examples, facts, memory: ~300
tokens) so the first turn finds it in the KV cache. That is ~1 s of both cores on a
Pi-class machine, and much more while anything else runs. The state after it is saved;
the next start loads it (a few MB, a few ms) and evaluates only the tokens that changed
since (a new memory summary changes the end of the prompt, not its start).

A state file is only read back by the same model file, context size and KV cache types
(they are in its name); llama.cpp rejects one it cannot use, and then the prompt is
simply evaluated again. Each persona (its system prompt) has its own file, the
:data:`SLOTS` most recently used are kept: with one file, a run of another persona (a
swap, a test, the bench's daemon) made the next start evaluate the whole prompt again
(158 tokens, 1.3 s on the 2-core box, against 20 ms).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

SLOTS = 4
"""Persona prefixes kept per model and settings (a few MB each)."""


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/companion/llm`` (the systemd unit points it at the service's CacheDirectory)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "companion" / "llm"


class PrefixCache:
    """State files per model and context settings: one per persona, the last :data:`SLOTS` used."""

    def __init__(self, directory: Path, model: Path, **settings: object) -> None:
        import llama_cpp

        stat = model.stat()
        key = repr(
            (str(model.resolve()), stat.st_size, stat.st_mtime_ns, llama_cpp.__version__, sorted(settings.items()))
        )
        self.directory = directory
        self._key = hashlib.sha256(key.encode()).hexdigest()[:16]

    def path(self, slot: str) -> Path:
        """The state file for ``slot`` (e.g. the persona's system prompt)."""
        return self.directory / f"prefix-{self._key}-{hashlib.sha256(slot.encode()).hexdigest()[:8]}.state"

    def _files(self) -> list[Path]:
        return list(self.directory.glob(f"prefix-{self._key}-*.state"))

    def _touch(self, path: Path) -> None:
        """Mark ``path`` the most recently used: strictly newer than every other file.

        The file system's clock is coarse (a few ms per tick on many kernels), and two
        restores in a row got the same time, so the order of use was lost."""
        newest = max((_mtime_ns(f) for f in self._files() if f != path), default=0)
        stamp = max(time.time_ns(), newest + 1_000)
        with contextlib.suppress(OSError):
            os.utime(path, ns=(stamp, stamp))

    def _evict(self) -> None:
        """Keep the :data:`SLOTS` most recently used files (and drop the one-file layout's)."""
        (self.directory / f"prefix-{self._key}.state").unlink(missing_ok=True)
        files = sorted(self._files(), key=_mtime_ns, reverse=True)
        for old in files[SLOTS:]:
            old.unlink(missing_ok=True)

    def restore(self, llm: Any, slot: str) -> int:
        """Load ``slot``'s saved prefix into ``llm`` (a ``llama_cpp.Llama``); the tokens it holds (0: none)."""
        import llama_cpp

        path = self.path(slot)
        if not path.is_file():
            return 0
        n_ctx = llm.n_ctx()
        tokens = (llama_cpp.llama_token * n_ctx)()
        count = ctypes.c_size_t(0)
        try:
            ok = llama_cpp.llama_state_load_file(llm._ctx.ctx, str(path).encode(), tokens, n_ctx, ctypes.byref(count))
        except OSError as exc:
            ok = False
            _log.debug("cannot read %s: %s", path, exc)
        if not ok or not 0 < count.value <= n_ctx:
            _log.info("LLM prefix cache %s not usable; evaluating the prompt again", path)
            llm.reset()
            llm._ctx.kv_cache_clear()
            return 0
        n = count.value
        self._touch(path)  # used now: the last to be evicted
        llm.input_ids[:n] = tokens[:n]
        llm.n_tokens = n
        return n

    def save(self, llm: Any, slot: str) -> None:
        """Write ``llm``'s evaluated tokens and KV cache (written aside, then renamed into place)."""
        import llama_cpp

        n = llm.n_tokens
        if n <= 0:
            return
        tokens = (llama_cpp.llama_token * n)(*llm.input_ids[:n])
        path = self.path(slot)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not llama_cpp.llama_state_save_file(llm._ctx.ctx, str(tmp).encode(), tokens, n):
                raise OSError("llama.cpp could not write it")
            os.replace(tmp, path)
            self._touch(path)
            self._evict()
        except OSError as exc:
            _log.warning("cannot save the LLM prefix cache %s: %s", path, exc)
            tmp.unlink(missing_ok=True)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
