"""Speculative transcription: a turn is transcribed while the detector waits out the silence.

The listen worker starts a draft when a pause begins; the think worker takes the
draft's transcript when the turn is confirmed to have ended where the draft did.
:class:`Drafts` owns the futures and the STT thread they run on.

An STT that streams (``streams_live``, e.g. a Wyoming server) is sent the turn while
the user speaks (:meth:`Drafts.follow`): a draft or a turn then only has its last few
blocks to send before the server is asked for the transcript. A server transcribes a
stream once, so when the user speaks again after a draft the turn is streamed anew
from its start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from companion.messages import Utterance
from companion.stages import Chat, SpeechToText
from companion.stt import StreamingSpeechToText, SttStream
from companion.turnend import EndOfTurn
from companion.vad import TurnDetector

_log = logging.getLogger(__name__)


class StageTimeout(Exception):
    """A stage took longer than ``stage_timeout_s``."""


class _LiveTurn:
    """A turn being streamed to the STT: where it starts, and how much of it was sent."""

    def __init__(self, stream: SttStream, start_s: float) -> None:
        self.stream, self.start_s, self.sent = stream, start_s, 0


Key = tuple[float, float]


class Drafts:
    def __init__(self, stt: Callable[[], SpeechToText]) -> None:
        self._stt = stt
        self._lock = threading.Lock()
        self._futures: dict[Key, Future[str]] = {}
        self._streams: dict[Key, SttStream] = {}  # the stream behind a streamed draft's future
        self._pool: ThreadPoolExecutor | None = None
        self._live: _LiveTurn | None = None  # the listen worker's alone, as is:
        self._spent: Key | None = None  # the (start, end) of the speech the last stream was finished on

    def _submit(self, utt: Utterance) -> Future[str]:
        """Transcribe ``utt`` on the STT thread: the rest of its live stream, or the whole turn (lock held)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="companion-stt")
        live = self._take_live(utt)
        if live is None:
            return self._pool.submit(self._stt().transcribe, utt.float32())
        self._streams[(utt.start_s, utt.end_s)] = live
        return self._pool.submit(live.finish)

    def _drop(self, key: Key) -> None:
        """Forget a stale draft (lock held); a stream whose transcript was never asked for is cancelled."""
        stream = self._streams.pop(key, None)
        if self._futures.pop(key).cancel() and stream is not None:
            stream.cancel()

    # ---- the listen worker's side --------------------------------------------------

    def follow(self, detector: TurnDetector) -> None:
        """Stream the turn being heard to an STT that takes live audio (after each block)."""
        live, start = self._live, detector.turn_start_s
        if live is not None and live.start_s != start:
            live.stream.cancel()  # the turn was dropped (too short) or already taken
            self._live = live = None
        if start is None:
            return
        if live is None and self._spent is not None and self._spent[0] == start:
            end = detector.speech_end_s
            if end is None or end <= self._spent[1]:
                return  # a pause after a draft: stream the turn again only if the user speaks again
        if live is None:
            stt = self._stt()
            if not getattr(stt, "streams_live", False) or detector.voiced_ms < detector.settings.min_utterance_ms:
                return  # whole-turn STT, or not yet more than a cough
            streaming = cast(StreamingSpeechToText, stt)
            self._live = live = _LiveTurn(streaming.open_stream(detector.rate), start)
        audio = detector.turn_samples(live.sent)
        if len(audio):
            live.stream.feed(audio)
            live.sent += len(audio)

    def _take_live(self, utt: Utterance) -> SttStream | None:
        """The live stream of ``utt``'s turn with the rest of ``utt`` sent (it can be finished once)."""
        live = self._live
        if live is None or live.start_s != utt.start_s:
            return None
        self._live = None
        self._spent = (utt.start_s, utt.end_s)
        if live.sent < len(utt.samples):
            live.stream.feed(utt.samples[live.sent :])
        return live.stream

    def start(self, draft: Utterance, on_done: Callable[[Future[str]], None] | None = None) -> None:
        """Transcribe a turn that may be over (called by the listen worker)."""
        with self._lock:
            for key in [k for k in self._futures if k[0] == draft.start_s]:
                self._drop(key)  # the user spoke again: the older draft is stale
            future = self._submit(draft)
            self._futures[(draft.start_s, draft.end_s)] = future
        if on_done is not None:
            future.add_done_callback(on_done)

    def heard(self, utt: Utterance) -> None:
        """A turn ended (listen worker): ask for its transcript now if its audio was streamed."""
        with self._lock:
            key = (utt.start_s, utt.end_s)
            if key not in self._futures and self._live is not None and self._live.start_s == utt.start_s:
                self._futures[key] = self._submit(utt)

    # ---- the think worker's side ---------------------------------------------------

    def transcribe(self, utt: Utterance, timeout_s: float) -> str:
        """The turn's text: its draft's when the turn ended where the draft did."""
        with self._lock:
            key = (utt.start_s, utt.end_s)
            draft = self._futures.pop(key, None)
            streamed = self._streams.pop(key, None) is not None
            for k in [k for k in self._futures if k[1] <= utt.end_s]:
                self._drop(k)
            if draft is None or (not streamed and draft.cancel()):  # no draft, or it never started
                draft = self._submit(utt)
        try:
            return draft.result(timeout=timeout_s)
        except TimeoutError:
            raise StageTimeout(f"no transcript in {timeout_s:g} s") from None

    def close(self) -> None:
        with self._lock:
            live, self._live = self._live, None
            if live is not None:
                live.stream.cancel()
            for stream in self._streams.values():
                stream.cancel()
            self._streams.clear()
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


def answer_draft(
    detector: TurnDetector, policy: EndOfTurn | None, draft: Utterance, future: Future[str]
) -> tuple[str, int | None]:
    """Tell a hinted detector how long ``draft``'s pause must last, from its transcript.

    Returns the transcript and the hold it was given (None: no policy, or not hinted).
    """
    if future.cancelled():
        return "", None
    text = "" if future.exception() is not None else future.result()
    if policy is None or not detector.hinted:
        return text, None
    if detector.speech_end_s != draft.end_s:
        # The user spoke again (or the turn is over): this pause needs no answer, and asking
        # the model would hold up the STT thread, and so the next draft, for nothing (a
        # draft decided 1031 ms after it was taken behind two such probes).
        _log.debug("end of turn: %r is stale; not asked", text)
        return text, None
    hold = hold_for(policy, text, detector.settings.end_silence_ms)
    detector.set_hold(draft, hold)
    _log.debug(
        "end of turn: %r (speech to %.2f s): %d ms of silence ends it (decided %.0f ms after the draft)",
        text,
        draft.end_s,
        hold,
        (time.monotonic() - draft.detected_at) * 1000,
    )
    return text, hold


def likely_over(hold_ms: int | None, detector: TurnDetector) -> bool:
    """Worth starting the reply on the draft: the policy did not judge the user unfinished
    (``hold_ms`` below ``vad.max_end_silence_ms``), or there is no policy to ask."""
    return hold_ms is None or hold_ms < detector.settings.max_end_silence_ms


def prefill_quietly(chat: Chat, text: str) -> None:
    """Let the LLM read the likely words ahead (best effort: a failure only costs the speed-up).

    The reply to the same words then evaluates only the template's closing tokens; if the
    user goes on, the next prompt shares the persona and history prefix with it, so only
    the draft's own tokens are thrown away (the LLM skips a prefill a newer one replaced).
    """
    if not text.strip():
        return
    try:
        chat.prefill(text, wait=False)
    except Exception:
        _log.debug("speculative prefill failed", exc_info=True)
