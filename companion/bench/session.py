"""The benchmark's user: recorded turns, spoken into the loop like a microphone would.

Each turn is cut out of a fixture recording (with its own background noise) and
delivered in real time, block by block, on one continuous audio clock. Between
turns the "room" is quiet and the user waits until the robot has finished
answering, then a little more, before speaking again. The true end of each
turn's speech (from ``fixtures.json``) is kept on that clock, so the runner can
put it on the wall clock: ``origin + true_end_s``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.audio.io import STT_RATE, load_for_stt
from companion.errors import UserError
from companion.messages import AudioChunk, Int16Array

DEFAULT_KINDS = ("utterance", "session")
"""Fixture kinds benchmarked by default (single questions and multi-turn conversations)."""

_PAD_BEFORE_S = 0.3
_PAD_AFTER_S = 0.3  # keeps the room's reverberation tail


@dataclass(frozen=True)
class Segment:
    """One user turn to play."""

    fixture: str
    index: int
    text: str
    samples: Int16Array
    """16 kHz mono audio: a little background, the speech, its room tail."""
    speech_end_s: float
    """Where the speech truly ends, from the start of ``samples``."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / STT_RATE


@dataclass(frozen=True)
class PlayedTurn:
    segment: Segment
    start_s: float
    """Where the segment starts on the session's audio clock."""
    true_end_s: float
    """Where its speech truly ends on that clock."""


def read_manifest(fixtures_dir: Path) -> dict[str, dict[str, object]]:
    path = fixtures_dir / "fixtures.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (a fixtures directory needs a fixtures.json manifest)") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise UserError(f"{path}: expected an object with a 'files' map")
    return files


def load_room(fixtures_dir: Path) -> Int16Array | None:
    """The recordings' background alone (a ``noise`` fixture without events), to fill the
    pauses between turns, at the level of the recordings' own background; None if the
    manifest has none.

    The pauses must sound like the room the turns were recorded in: a quieter or
    different "room" makes the detector take the recordings' own background for
    speech (it adapts to the level it hears between turns), and a louder one (the pause
    fixtures' room tone is 12 dB above their sessions' background) rises after every
    turn, which the detector takes for the start of speech.
    """
    files = read_manifest(fixtures_dir)
    for name, info in sorted(files.items()):
        if info.get("kind") == "noise" and not info.get("events") and (fixtures_dir / name).exists():
            return _at_level(load_for_stt(fixtures_dir / name), background_rms(fixtures_dir, files))
    return None


def background_rms(fixtures_dir: Path, files: dict[str, dict[str, object]]) -> float | None:
    """The median RMS of the turn recordings' background (before their first turn), if any has
    at least 0.2 s of it."""
    levels = []
    for name, info in sorted(files.items()):
        turns = info.get("turns")
        if info.get("kind") not in DEFAULT_KINDS or not isinstance(turns, list) or not turns:
            continue
        if not (fixtures_dir / name).exists():
            continue
        lead = load_for_stt(fixtures_dir / name)[: int((float(turns[0]["start_s"]) - 0.1) * STT_RATE)]
        if len(lead) >= 0.2 * STT_RATE:
            levels.append(_rms(lead))
    return float(np.median(levels)) if levels else None


def _rms(x: Int16Array) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _at_level(room: Int16Array, rms: float | None) -> Int16Array:
    """``room`` scaled to ``rms`` (unchanged within 1 dB of it, or without a level)."""
    now = _rms(room) if len(room) else 0.0
    if rms is None or now <= 0.0 or abs(20.0 * np.log10(rms / now)) < 1.0:
        return room
    return np.clip(np.round(room.astype(np.float64) * (rms / now)), -32768, 32767).astype(np.int16)


def load_segments(fixtures_dir: Path, names: Sequence[str] = (), kinds: Sequence[str] = DEFAULT_KINDS) -> list[Segment]:
    """The turns of the fixtures ``names`` (default: every file of one of ``kinds``).

    Files that copy another (``"source"`` in the manifest) are skipped by default.
    """
    files = read_manifest(fixtures_dir)
    if names:
        unknown = [n for n in names if n not in files]
        if unknown:
            raise UserError(f"no fixture {', '.join(unknown)} in {fixtures_dir / 'fixtures.json'}")
        chosen = list(names)
    else:
        chosen = [n for n, info in sorted(files.items()) if info.get("kind") in kinds and "source" not in info]
    segments: list[Segment] = []
    for name in chosen:
        turns = files[name].get("turns") or []
        assert isinstance(turns, list)
        if not turns:
            if names:
                raise UserError(f"fixture {name} has no spoken turns to answer")
            continue
        audio = load_for_stt(fixtures_dir / name)
        for i, turn in enumerate(turns):
            start = max(0, int((float(turn["start_s"]) - _PAD_BEFORE_S) * STT_RATE))
            end = min(len(audio), int((float(turn["end_s"]) + _PAD_AFTER_S) * STT_RATE))
            segments.append(
                Segment(
                    fixture=name,
                    index=i,
                    text=str(turn.get("text", "")),
                    samples=audio[start:end],
                    speech_end_s=float(turn["end_s"]) - start / STT_RATE,
                )
            )
    if not segments:
        raise UserError(f"no spoken turns found in {fixtures_dir / 'fixtures.json'}")
    return segments


class PacedSession:
    """An :class:`~companion.stages.AudioSource` playing ``segments`` in real time, one turn at a time.

    ``idle()`` tells whether the robot has finished answering; the session waits for
    it (at most ``max_wait_s``) after each turn's ``settle_s`` of quiet. Pauses are
    filled with ``room`` (looped), or else with faint white noise at ``room_dbfs``.
    """

    live = True
    """Behaves like a microphone: the loop's ignore-while-speaking applies."""

    def __init__(
        self,
        segments: Sequence[Segment],
        *,
        rate: int = STT_RATE,
        block_ms: int = 30,
        lead_s: float = 1.0,
        settle_s: float = 1.5,
        gap_s: float = 1.0,
        max_wait_s: float = 60.0,
        room: Int16Array | None = None,
        room_dbfs: float = -65.0,
        idle: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.segments = list(segments)
        self.rate = rate
        self.block = rate * block_ms // 1000
        self.lead_s, self.settle_s, self.gap_s, self.max_wait_s = lead_s, settle_s, gap_s, max_wait_s
        self.idle = idle
        self.origin: float | None = None
        """Wall-clock (``clock``) time of the session's audio time 0."""
        self.played: list[PlayedTurn] = []
        self.on_turn: Callable[[PlayedTurn], None] | None = None
        """Called as each turn starts playing (for progress output)."""
        self._clock, self._sleep = clock, sleep
        self._closed = threading.Event()
        self._frames = 0
        if room is None or len(room) < rate:
            rng = np.random.default_rng(0)
            room = np.clip(rng.normal(0.0, 32768.0 * 10 ** (room_dbfs / 20.0), 10 * rate), -32768, 32767)
        self._room = loopable(np.asarray(room, dtype=np.int16), rate // 10)
        self._room_at = 0

    @property
    def now_s(self) -> float:
        return self._frames / self.rate

    def wall_time(self, source_s: float) -> float:
        """When a moment of the session's audio was 'spoken', on the wall clock."""
        assert self.origin is not None, "the session has not started"
        return self.origin + source_s

    def _quiet(self, seconds: float) -> Int16Array:
        """Whole blocks of room tone, at least one."""
        n = max(round(seconds * self.rate / self.block), 1) * self.block
        index = (self._room_at + np.arange(n)) % len(self._room)
        self._room_at = int(index[-1] + 1)
        return self._room[index]

    def _blocks(self, samples: Int16Array) -> Iterator[AudioChunk]:
        pad = (-len(samples)) % self.block
        if pad:
            samples = np.concatenate([samples, self._quiet(0)[:pad]])
            self._room_at = (self._room_at - self.block + pad) % len(self._room)
        for offset in range(0, len(samples), self.block):
            if self._closed.is_set():
                return
            start_s = self.now_s
            self._frames += self.block
            assert self.origin is not None
            wait = self.origin + self.now_s - self._clock()
            if wait > 0:
                self._sleep(wait)
            yield AudioChunk(samples[offset : offset + self.block], self.rate, start_s)

    def _wait_idle(self) -> Iterator[AudioChunk]:
        deadline = self.now_s + self.max_wait_s
        while self.idle is not None and not self.idle() and self.now_s < deadline and not self._closed.is_set():
            yield from self._blocks(self._quiet(self.block / self.rate))

    def chunks(self) -> Iterator[AudioChunk]:
        if self.origin is None:
            self.origin = self._clock()
        yield from self._blocks(self._quiet(self.lead_s))
        for segment in self.segments:
            if self._closed.is_set():
                return
            turn = PlayedTurn(segment, self.now_s, self.now_s + segment.speech_end_s)
            self.played.append(turn)
            if self.on_turn is not None:
                self.on_turn(turn)
            yield from self._blocks(segment.samples)
            yield from self._blocks(self._quiet(self.settle_s))
            yield from self._wait_idle()
            yield from self._blocks(self._quiet(self.gap_s))

    def close(self) -> None:
        self._closed.set()


def loopable(samples: Int16Array, fade: int) -> Int16Array:
    """``samples`` with the end cross-faded into the start, so it can repeat without a click."""
    if len(samples) <= 2 * fade:
        return samples
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    body = samples[fade:].astype(np.float32)
    body[-fade:] = body[-fade:] * (1.0 - ramp) + samples[:fade].astype(np.float32) * ramp
    return np.clip(body, -32768, 32767).astype(np.int16)
