"""Speculative transcription: a turn is transcribed while the detector waits out the silence.

The listen worker starts a draft when a pause begins; the think worker takes the
draft's transcript when the turn is confirmed to have ended where the draft did.
:class:`Drafts` owns the futures and the STT thread they run on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from companion.messages import Utterance
from companion.stages import Chat, SpeechToText
from companion.turnend import EndOfTurn

_log = logging.getLogger(__name__)


class StageTimeout(Exception):
    """A stage took longer than ``stage_timeout_s``."""


class Drafts:
    def __init__(self, stt: Callable[[], SpeechToText]) -> None:
        self._stt = stt
        self._lock = threading.Lock()
        self._futures: dict[tuple[float, float], Future[str]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _submit(self, utt: Utterance) -> Future[str]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-stt")
        return self._pool.submit(self._stt().transcribe, utt.float32())

    def start(self, draft: Utterance, on_done: Callable[[Future[str]], None] | None = None) -> None:
        """Transcribe a turn that may be over (called by the listen worker)."""
        with self._lock:
            for key in [k for k in self._futures if k[0] == draft.start_s]:
                self._futures.pop(key).cancel()  # the user spoke again: the older draft is stale
            future = self._submit(draft)
            self._futures[(draft.start_s, draft.end_s)] = future
        if on_done is not None:
            future.add_done_callback(on_done)

    def transcribe(self, utt: Utterance, timeout_s: float) -> str:
        """The turn's text: its draft's when the turn ended where the draft did."""
        with self._lock:
            draft = self._futures.pop((utt.start_s, utt.end_s), None)
            for key in [k for k in self._futures if k[1] <= utt.end_s]:
                self._futures.pop(key).cancel()
            if draft is None or draft.cancel():  # no draft, or it never started
                draft = self._submit(utt)
        try:
            return draft.result(timeout=timeout_s)
        except TimeoutError:
            raise StageTimeout(f"no transcript in {timeout_s:g} s") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)


def hold_for(policy: EndOfTurn, draft_text: str, usual_ms: int) -> int:
    """The silence that ends a turn whose draft reads ``draft_text``; ``usual_ms`` if it cannot say."""
    if not draft_text.strip():
        return usual_ms
    try:
        return policy.hold_ms(draft_text)
    except Exception:
        _log.exception("end-of-turn decision failed; waiting out the usual silence")
        return usual_ms


def prefill_quietly(chat: Chat, text: str) -> None:
    """Let the LLM read the likely words ahead (best effort: a failure only costs the speed-up)."""
    if not text.strip():
        return
    try:
        chat.prefill(text, wait=False)
    except Exception:
        _log.debug("speculative prefill failed", exc_info=True)
