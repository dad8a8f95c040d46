"""The seams of the voice loop: one small Protocol per stage.

Backends implement these and import their heavy libraries lazily, so that
``import companion`` stays fast and a test of one stage loads one model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from companion.messages import AudioChunk, Event, Float32Array, PersonaPrompt, SpokenAudio

Clock = Callable[[], float]
"""Monotonic seconds; injected so timing logic can be tested without sleeping."""


class DeviceLost(Exception):
    """An audio device stopped working (unplugged, or the sound server went away)."""


@runtime_checkable
class AudioSource(Protocol):
    """Where the user's voice comes from (a microphone or a recording)."""

    rate: int
    live: bool
    """True for a microphone: the robot's own voice could leak back into it."""

    def chunks(self) -> Iterator[AudioChunk]:
        """Yield mono 16-bit blocks until the source ends or :meth:`close` is called.

        Raises :class:`DeviceLost` if the device goes away; calling it again reopens it.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class AudioSink(Protocol):
    """Where the robot's voice goes (a speaker or files)."""

    def begin(self, turn: int) -> None:
        """A reply starts (the speaker amp may need switching on)."""
        ...

    def write(self, audio: SpokenAudio) -> float:
        """Queue audio for playing; return seconds until its first sample is heard."""
        ...

    def end(self, turn: int) -> str:
        """The reply is complete: wait until it has played. Returns a name for it (a file) or ''."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SpeechToText(Protocol):
    def transcribe(self, audio: Float32Array) -> str:
        """Text of 16 kHz mono float audio; '' when nothing was said."""
        ...


@runtime_checkable
class Chat(Protocol):
    """A conversation with the persona; keeps its own memory of earlier turns."""

    def reply(self, text: str) -> Iterator[str]:
        """Stream the reply to ``text`` as text pieces, as the model writes them."""
        ...

    def remember_spoken(self, spoken_reply: str) -> None:
        """Keep in memory what was actually said for the last reply (it may have been cut)."""
        ...

    def prefill(self, user: str | None = None, *, wait: bool = True) -> None:
        """Idle time: get ready for the next turn (e.g. evaluate the prompt so far), or
        for ``user``'s likely words while the end of the turn is being confirmed."""
        ...

    def reset(self, prompt: PersonaPrompt | None = None, *, keep_memory: bool = False) -> None:
        """Forget the conversation (unless ``keep_memory``) and optionally change who the model plays."""
        ...


@runtime_checkable
class Synthesizer(Protocol):
    """Text to speech."""

    sample_rate: int

    def synthesize(self, text: str, *, speed: float | None = None) -> Iterator[Float32Array]:
        """Stream mono float audio for one sentence, first block as soon as possible.

        ``speed`` (0.5-2.0) changes the speaking rate with the pitch kept; None = the voice default.
        """
        ...


Listener = Callable[[Event], None]
_log = logging.getLogger(__name__)


class EventBus:
    """Synchronous fan-out of loop events to listeners (eyes, logs, API, bench).

    Listeners run in the publishing thread and must be quick; one that raises is
    logged and does not stop the others.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _log.exception("event listener %r failed", listener)
