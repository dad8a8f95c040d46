"""Per-stage fallback: the remote first; the embedded model when the remote fails or is late.

Each wrapper implements its stage's Protocol, so the voice loop needs no change. A
turn (or sentence) goes to the local model when the remote does not connect within
its connect timeout or gives no first result within its deadline; the remote is then
left alone with back-off (:class:`~companion.remote.health.RemoteHealth`) and tried
again later. A remote that fails after its first result has its answer cut there
(what was said stays said); the next turn goes local.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from companion.messages import Float32Array, Int16Array, PersonaPrompt
from companion.remote.health import RemoteError, RemoteHealth
from companion.remote.relay import Relay
from companion.stages import Chat, Clock, SpeechToText, Synthesizer
from companion.stt import STT_RATE, AudioBuffer, SttStream, to_stt_input

_log = logging.getLogger(__name__)


def _status(remote: Any, local: Any, health: RemoteHealth) -> dict[str, object]:
    out: dict[str, object] = {"backend": str(getattr(remote, "name", type(remote).__name__))}
    out["fallback"] = str(getattr(local, "name", type(local).__name__)) if local is not None else None
    out.update(health.as_json())
    return out


def _probe_later(name: str, probe: Any, health: RemoteHealth) -> None:
    """Ask the remote once at start-up, on a thread (start-up never waits on the network)."""

    def run() -> None:
        t = time.perf_counter()
        try:
            probe()
        except Exception as exc:
            health.failed(exc)
        else:
            health.ok((time.perf_counter() - t) * 1000)

    threading.Thread(target=run, name=name, daemon=True).start()


def _from_local(wrapper: Any, name: str) -> Any:
    """Other abilities of the local model (e.g. ``end_of_turn_probability``) come from it, if loaded."""
    local = wrapper.__dict__.get("local")
    if local is None or name.startswith("_"):
        raise AttributeError(name)
    return getattr(local, name)


class FallbackSTT:
    """Speech-to-text on a Wyoming server, with the local model for the turns it misses."""

    streams_live = True
    """The loop streams each turn here while the user speaks (:meth:`open_stream`)."""

    def __init__(self, remote: Any, local: SpeechToText | None, *, clock: Clock = time.monotonic) -> None:
        self.remote = remote
        self.local = local
        self.health = RemoteHealth("stt", remote.uri, clock=clock)

    def warm(self) -> None:
        warm = getattr(self.local, "warm", None)
        if warm is not None:
            warm()
        from companion.remote.wyoming_io import describe

        r = self.remote
        _probe_later("companion-stt-probe", lambda: describe(r.uri, connect_timeout=r.connect_timeout_s), self.health)

    def transcribe(self, audio: Float32Array) -> str:
        stream = self.open_stream(STT_RATE)
        stream.feed((audio.clip(-1.0, 1.0) * 32767.0).astype("int16"))
        return stream.finish()

    def open_stream(self, rate: int = STT_RATE) -> SttStream:
        remote = self.remote.open_stream(rate) if self.local is None or self.health.should_try() else None
        return FallbackSttStream(self, remote, rate)

    def backend_status(self) -> dict[str, object]:
        return _status(self.remote, self.local, self.health)

    def __getattr__(self, name: str) -> Any:
        return _from_local(self, name)


class FallbackSttStream:
    def __init__(self, owner: FallbackSTT, remote: Any, rate: int) -> None:
        self.owner = owner
        self.remote = remote
        self.audio = AudioBuffer(rate)
        self._started = time.perf_counter()

    def feed(self, samples: Int16Array) -> None:
        self.audio.add(samples)
        if self.remote is not None:
            self.remote.feed(samples)

    def finish(self) -> str:
        o, h = self.owner, self.owner.health
        if self.remote is not None:
            t = time.perf_counter()
            try:
                if self.remote.failed is not None:
                    raise self.remote.failed
                text: str = self.remote.finish()
            except Exception as exc:
                h.failed(exc)
                if o.local is None:
                    raise RemoteError(f"stt: {exc}") from None
            else:
                h.ok((time.perf_counter() - t) * 1000)
                return text
        assert o.local is not None
        h.used_fallback()
        return o.local.transcribe(to_stt_input(self.audio.samples(), self.audio.rate))

    def cancel(self) -> None:
        if self.remote is not None:
            self.remote.cancel()


T = TypeVar("T")


def remote_first(
    stage: str,
    remote: Callable[[], Iterable[T]],
    local: Callable[[], Iterable[T]] | None,
    h: RemoteHealth,
    *,
    first_s: float,
    next_s: float,
    clock: Clock,
    on_fail: Callable[[], None] | None = None,
) -> Iterator[T]:
    """Stream from ``remote``; if it gives nothing within ``first_s``, from ``local`` instead.

    A remote that is backing off is skipped. One cut short after its first piece is logged and
    ends the stream: what was already said stands.
    """
    if local is not None and not h.should_try():
        h.used_fallback()
        yield from local()
        return
    relay: Relay[T] = Relay(remote, name=f"companion-{stage}-remote")
    t = clock()
    try:
        try:
            first = relay.first(first_s)
        except Exception as exc:
            if on_fail is not None:
                on_fail()
            h.failed(exc)
            if local is None:
                raise RemoteError(f"{stage}: {exc}") from None
            h.used_fallback()
            yield from local()
            return
        h.ok((clock() - t) * 1000)
        if first is None:
            return
        yield first
        try:
            yield from relay.rest(next_s)
        except Exception as exc:
            h.failed(exc)
            _log.warning("%s: the remote stream was cut (%s)", stage, exc)
    finally:
        relay.close()


class FallbackChat:
    """A chat on a remote server, with the local model for the turns it misses (one shared memory)."""

    def __init__(self, remote: Any, local: Chat | None, *, clock: Clock = time.monotonic) -> None:
        self.remote = remote
        self.local = local
        self.clock = clock
        self.health = RemoteHealth("llm", remote.url, clock=clock)
        s = remote.settings
        self.first_s = s.connect_timeout_s + s.deadline_s
        self.next_s = s.deadline_s

    def warm(self) -> None:
        warm = getattr(self.local, "warm", None)
        if warm is not None:
            warm()
        _probe_later("companion-llm-probe", self.remote.probe, self.health)

    def reply(self, text: str) -> Iterator[str]:
        abandoned = threading.Event()
        local = None if self.local is None else (lambda: self.local.reply(text))  # type: ignore[union-attr]
        yield from remote_first(
            "llm",
            lambda: self.remote.reply_until(text, abandoned),
            local,
            self.health,
            first_s=self.first_s,
            next_s=self.next_s,
            clock=self.clock,
            on_fail=abandoned.set,
        )

    def remember_spoken(self, spoken_reply: str) -> None:
        self.remote.remember_spoken(spoken_reply)  # the memory is shared: once is enough

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        """Keep the local model's cache current while idle; a speculative prefill only when it will answer."""
        if self.local is not None and (user is None or not self.health.should_try()):
            self.local.prefill(user, wait=wait)

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        changed = self.remote.chat_memory.reset(prompt, keep_memory=keep_memory)
        if changed and self.local is not None:
            warm = getattr(self.local, "warm", None)
            if warm is not None:
                warm()

    def backend_status(self) -> dict[str, object]:
        return _status(self.remote, self.local, self.health)

    def __getattr__(self, name: str) -> Any:
        return _from_local(self, name)


class FallbackSynthesizer:
    """A voice on a Wyoming server, with the local voice for the sentences it misses."""

    def __init__(self, remote: Any, local: Synthesizer | None, *, clock: Clock = time.monotonic) -> None:
        self.remote = remote
        self.local = local
        self.clock = clock
        self.sample_rate: int = local.sample_rate if local is not None else remote.sample_rate
        self.health = RemoteHealth("tts", remote.uri, clock=clock)
        self.first_s = remote.connect_timeout_s + remote.deadline_s
        self.next_s = remote.deadline_s
        self.name = f"{remote.name} (fallback: {getattr(local, 'name', 'none')})"

    def probe(self) -> None:
        _probe_later("companion-tts-probe", self.remote.streams, self.health)

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        local = None if self.local is None else (lambda: self.local.synthesize(text, speed=speed))  # type: ignore[union-attr]
        yield from remote_first(
            "tts",
            lambda: self.remote.synthesize(text),
            local,
            self.health,
            first_s=self.first_s,
            next_s=self.next_s,
            clock=self.clock,
        )

    def backend_status(self) -> dict[str, object]:
        return _status(self.remote, self.local, self.health)
