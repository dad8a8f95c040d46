"""The loop's shared state, with one owner: :class:`LoopState`.

Every worker reads and changes the robot's state, the turn numbers, the reply being
spoken and the speaking/deaf window only through it; it holds the lock and publishes
:class:`StateChange` events. :class:`Reply` is one reply on its way out, which
barge-in or shutdown can cancel at any stage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from companion.messages import State, StateChange, TurnRecord
from companion.stages import Clock, EventBus, Synthesizer

_log = logging.getLogger(__name__)


@dataclass
class Reply:
    """One reply, from the first sentence to the last sample played."""

    record: TurnRecord
    synth: Synthesizer
    speed: float | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    """Set by barge-in or stop: every stage drops the rest of this reply."""
    done: threading.Event = field(default_factory=threading.Event)
    """Set once the reply has been played (or dropped) and its turn finished."""
    cut_at: float | None = None
    """Clock time at which it was interrupted."""
    written: dict[int, str] = field(default_factory=dict)
    """Sentence index -> the sentence as the LLM wrote it."""
    played: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    """Sentence index -> (heard from, heard until) of each block handed to the speaker."""

    @property
    def turn(self) -> int:
        return self.record.turn

    def heard_text(self) -> str:
        """The part of the reply the listener heard before the cut (all of it if not cut)."""
        if self.cut_at is None:
            return " ".join(self.written[i] for i in sorted(self.written))
        words: list[str] = []
        for i in sorted(self.written):
            spans = self.played.get(i, [])
            total = sum(b - a for a, b in spans)
            heard = sum(max(0.0, min(b, self.cut_at) - a) for a, b in spans)
            sentence = self.written[i].split()
            if total <= 0 or heard <= 0:
                break
            if heard < total - 1e-6:
                words += sentence[: int(len(sentence) * heard / total)]
                break
            words += sentence
        return " ".join(words)


class Heartbeats:
    """Per-worker progress, for the watchdog: a hung stage stops beating."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.last: dict[str, float] = {}
        """Per worker: time of last progress."""
        self.busy_since: dict[str, float | None] = {}
        """Per worker: start of the work in hand (None when waiting for work)."""

    def add(self, name: str) -> None:
        self.last[name] = self.clock()
        self.busy_since[name] = None

    def beat(self, name: str, busy: bool | None = None) -> None:
        now = self.clock()
        self.last[name] = now
        if busy is True:
            self.busy_since[name] = now
        elif busy is False:
            self.busy_since[name] = None

    def hung(self, limit_s: float, now: float | None = None) -> list[str]:
        now = self.clock() if now is None else now
        return [n for n, since in self.busy_since.items() if since is not None and now - since > limit_s]


class LoopState:
    """State, turn numbers, the reply on its way out, and when the robot is speaking."""

    def __init__(self, bus: EventBus, clock: Clock, persona_name: Callable[[], str]) -> None:
        self._bus = bus
        self._clock = clock
        self._persona_name = persona_name
        self._lock = threading.Lock()
        self._state = State.IDLE
        self._turn = 0
        self._reply: Reply | None = None
        self._speaking = False
        self._held = threading.Condition(self._lock)
        self._holding = False
        self._deaf_until = 0.0
        self._in_flight = 0
        self._idle = threading.Condition()
        self.stopping = threading.Event()

    # ---- state ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def set(self, state: State) -> None:
        with self._lock:
            if state == self._state:
                return
            previous, self._state = self._state, state
        self._bus.publish(StateChange(state, previous, self._persona_name()))

    # ---- turns ------------------------------------------------------------------------

    def next_turn(self) -> int:
        with self._lock:
            self._turn += 1
            return self._turn

    @property
    def last_turn(self) -> int:
        return self._turn

    def turn_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def turn_ended(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    @property
    def busy(self) -> bool:
        """A turn is queued or being answered."""
        return self._in_flight > 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no turn is being answered; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= 0 or self.stopping.is_set(), timeout)

    def wake_waiters(self) -> None:
        with self._idle:
            self._idle.notify_all()

    # ---- the reply and the speaking window --------------------------------------------

    def open_reply(self, reply: Reply) -> None:
        with self._lock:
            self._reply = reply

    @property
    def reply(self) -> Reply | None:
        return self._reply

    def speaking_started(self, reply: Reply, max_hold_s: float) -> bool:
        """The reply's first audio is ready: speak, unless the user has gone on talking.

        While :meth:`hold` is in force (the user started again after the turn ended) the
        reply waits, at most ``max_hold_s``; False if it was dropped meanwhile."""
        with self._lock:
            if self._holding:
                _log.debug("reply %d waits: the user is talking", reply.turn)
                self._held.wait_for(
                    lambda: not self._holding or reply.cancelled.is_set() or self.stopping.is_set(), max_hold_s
                )
            if reply.cancelled.is_set():
                return False
            self._holding = False
            self._speaking = True
            return True

    def hold(self) -> bool:
        """The user started talking again before the reply to their last turn was heard:
        keep it from starting until :meth:`release` (or :meth:`interrupt`). True if held."""
        with self._lock:
            reply = self._reply
            if self._speaking or reply is None or not reply.record.heard or reply.cancelled.is_set():
                return False  # a say job is no answer to the user: it is not held
            self._holding = True
            return True

    def release(self) -> None:
        with self._lock:
            self._holding = False
            self._held.notify_all()

    @property
    def holding(self) -> bool:
        return self._holding

    def speaking_ended(self, reply: Reply, echo_tail_s: float) -> None:
        """The reply is over: its echo may ring on for ``echo_tail_s`` (if it was played at all: a
        reply dropped before a word of it leaves no echo, and a user who went on is still talking)."""
        with self._lock:
            if self._speaking:
                self._deaf_until = self._clock() + echo_tail_s
            self._speaking = False
            if self._reply is reply:
                self._reply = None

    @property
    def speaking(self) -> bool:
        return self._speaking

    def in_echo_window(self) -> bool:
        """Speaking, or within the echo tail after it."""
        return self._speaking or self._clock() < self._deaf_until

    def interrupt(self) -> Reply | None:
        """Cancel the reply being spoken (barge-in); the reply, or None if there was none."""
        with self._lock:
            reply = self._reply
            if reply is None or reply.cancelled.is_set():
                return None
            reply.cut_at = self._clock()
            reply.cancelled.set()
            self._holding = False
            self._held.notify_all()
            return reply
