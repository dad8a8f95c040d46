"""Turn detection: cuts the microphone stream into user turns with webrtcvad.

The detector works on 10/20/30 ms frames at 16 kHz. A frame counts as voiced when
webrtcvad says so *and* it stands ``noise_gate_db`` above the tracked background
(:mod:`companion.noisefloor`), so a fan that starts, or a room tone webrtcvad was not
tuned on, is not taken for speech. A turn starts when ``start_ms`` of (nearly)
continuous voiced frames are heard; the audio kept starts ``pre_roll_ms`` before the
first voiced frame so the onset is never clipped. Turns with less than
``min_utterance_ms`` of voiced audio (a cough, a knock, a noise the floor has since
learnt) are dropped; a turn longer than ``max_utterance_s`` is cut and the rest carries
on as the next turn, so nothing is lost.

When does a turn end? After ``end_silence_ms`` of silence, unless the detector is
*hinted*: then a draft of the turn is offered (:meth:`TurnDetector.take_draft`) once
``DRAFT_AFTER_MS`` of silence has passed, and whoever takes it says how much silence
this pause needs (:meth:`TurnDetector.set_hold`, or :meth:`TurnDetector.end_turn_now`),
from what the user said (:mod:`companion.turnend`). Holds are clamped to
``min_end_silence_ms``..``max_end_silence_ms``; until one arrives, the pause may last up
to ``max_end_silence_ms``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from companion.config import VadSettings
from companion.messages import AudioChunk, Int16Array, Utterance
from companion.noisefloor import NoiseFloor, frame_db

_log = logging.getLogger(__name__)

TAIL_MS = 150
"""Audio kept after the last voiced frame (the fade of the final consonant)."""

DRAFT_AFTER_MS = 60
"""Silence after which a draft of the turn is offered for speculative transcription."""

CODA_MS = 150
"""After webrtcvad's last voiced frame, frames twice ``noise_gate_db`` above the room
still count as speech for this long: webrtcvad often misses a final "ts" or "s"."""

_NOW = -1
"""A hold that ends the pause at the next frame (:meth:`TurnDetector.end_turn_now`)."""


class FrameClassifier(Protocol):
    def is_speech(self, frame: bytes, rate: int) -> bool: ...


def webrtc_classifier(aggressiveness: int) -> FrameClassifier:
    import webrtcvad

    vad: FrameClassifier = webrtcvad.Vad(aggressiveness)
    return vad


class TurnDetector:
    """Feed it audio chunks; it returns finished :class:`Utterance` objects.

    ``hinted=True``: the caller takes every draft and answers it with :meth:`set_hold`
    or :meth:`end_turn_now` (from any thread); see the module docstring.
    """

    def __init__(
        self,
        settings: VadSettings,
        *,
        rate: int = 16000,
        classifier: FrameClassifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        hinted: bool = False,
    ) -> None:
        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad needs 8/16/32/48 kHz audio, got {rate}")
        if settings.min_end_silence_ms > settings.max_end_silence_ms:
            raise ValueError(
                f"vad.min_end_silence_ms ({settings.min_end_silence_ms}) is above "
                f"vad.max_end_silence_ms ({settings.max_end_silence_ms})"
            )
        self.settings = settings
        self.rate = rate
        self.hinted = hinted
        self.frame = rate * settings.frame_ms // 1000
        self._vad = classifier or webrtc_classifier(settings.aggressiveness)
        self._clock = clock
        ms = settings.frame_ms
        self._frame_s = ms / 1000
        self._start_frames = max(1, -(-settings.start_ms // ms))
        self._end_frames = max(1, -(-settings.end_silence_ms // ms))
        self._min_hold = max(1, -(-settings.min_end_silence_ms // ms))
        self._max_hold = max(1, -(-settings.max_end_silence_ms // ms))
        self._pre_frames = settings.pre_roll_ms // ms
        self._tail_frames = min(TAIL_MS // ms, self._end_frames, self._min_hold)
        self._max_frames = int(settings.max_utterance_s / self._frame_s)
        self._draft_frames = max(1, DRAFT_AFTER_MS // ms)
        self._min_voiced = settings.min_utterance_ms / ms
        self._coda_frames = CODA_MS // ms
        self._gate = settings.noise_gate_db
        self.floor = NoiseFloor(ms)
        """The tracked background level (``floor.db``, dBFS)."""
        self._hint_lock = threading.Lock()
        self._hint: tuple[float, float, int] | None = None  # (start_s, end_s, frames) of a pause
        self._pending = np.zeros(0, dtype=np.int16)
        self._pos = 0.0  # source time of the next frame
        self.reset()

    # ---- state ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget any partial turn (e.g. while the robot is speaking); the floor stays."""
        self._history: collections.deque[tuple[float, Int16Array, bool, float, bool]] = collections.deque(
            maxlen=self._pre_frames + self._start_frames
        )
        self._frames: list[Int16Array] = []
        self._levels: list[tuple[float, bool]] = []  # (dB, webrtcvad's word) per kept frame
        self._start_s = 0.0
        self._onset_s = 0.0
        self._start_floor = self.floor.db
        self._in_speech = False
        self._voiced = 0
        self._silence = 0
        self._last_voiced_end = 0.0
        self._frames_at_last_voiced = 0
        self._frames_at_said = 0  # frames up to webrtcvad's last voiced one
        self._draft: Utterance | None = None
        self._pause: tuple[float, float] | None = None  # (start_s, end_s) of this pause's draft
        with self._hint_lock:
            self._hint = None

    def take_draft(self) -> Utterance | None:
        """The turn as it stands if the silence now under way ends it; once per pause.

        The loop transcribes it while the detector waits out the pause, so the
        transcript is ready when the turn is declared over. The final turn has the same
        ``start_s`` and ``end_s`` as its draft when the user did not speak again.
        """
        draft, self._draft = self._draft, None
        return draft

    def set_hold(self, draft: Utterance, hold_ms: float) -> None:
        """End ``draft``'s pause after ``hold_ms`` of silence in all (clamped); any thread.

        Ignored if the user has spoken again since the draft (a new pause gets a new draft).
        """
        frames = -(-int(hold_ms) // self.settings.frame_ms)
        self._set_hint(draft, min(self._max_hold, max(self._min_hold, frames)))

    def end_turn_now(self, draft: Utterance | None = None) -> None:
        """End the pause under way (``draft``'s, if given) at the next frame; any thread."""
        self._set_hint(draft, _NOW)

    def _set_hint(self, draft: Utterance | None, frames: int) -> None:
        with self._hint_lock:
            if draft is None:
                pause = self._pause
                self._hint = None if pause is None else (*pause, frames)
            else:
                self._hint = (draft.start_s, draft.end_s, frames)

    @property
    def in_speech(self) -> bool:
        """True while a turn is being heard."""
        return self._in_speech

    @property
    def may_be_starting(self) -> bool:
        """Between turns, a voiced frame within the last ``start_ms``: a turn may be starting
        (it starts once ``start_ms`` of it is voiced)."""
        if self._in_speech:
            return False
        return any(h[2] for h in itertools.islice(reversed(self._history), self._start_frames))

    @property
    def turn_start_s(self) -> float | None:
        """Source time of the turn being heard (its pre-roll included); None between turns."""
        return self._start_s if self._in_speech else None

    @property
    def onset_s(self) -> float | None:
        """Source time of the first voiced frame that started the turn being heard (no pre-roll)."""
        return self._onset_s if self._in_speech else None

    @property
    def speech_end_s(self) -> float | None:
        """Source time where the turn's speech so far ends (a draft's ``end_s``); None between turns."""
        return self._last_voiced_end if self._in_speech else None

    def turn_samples(self, skip: int = 0) -> Int16Array:
        """The turn's audio so far, pre-roll included, after its first ``skip`` samples.

        Every :class:`Utterance` and draft of the turn is a prefix of this audio, so a
        caller streaming it to the STT can tell how much of a turn it has already sent.
        """
        frames = self._frames[skip // self.frame :] if self._in_speech else []
        if not frames:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(frames)[skip % self.frame :]

    @property
    def voiced_ms(self) -> float:
        """Voiced audio heard in the turn so far (0 between turns); barge-in waits for enough of it."""
        return self._voiced * self.settings.frame_ms if self._in_speech else 0.0

    def _needed_silence(self) -> int:
        if not self.hinted or self._pause is None:
            return self._end_frames
        with self._hint_lock:
            hint = self._hint
        if hint is not None and hint[:2] == self._pause:
            return hint[2]
        return self._max_hold

    # ---- feeding ----------------------------------------------------------------------

    def feed(self, chunk: AudioChunk) -> list[Utterance]:
        """Take a block of audio; return the turns it completed (usually none)."""
        if chunk.rate != self.rate:
            raise ValueError(f"turn detector runs at {self.rate} Hz, got a {chunk.rate} Hz chunk")
        if len(self._pending) == 0:
            self._pos = chunk.start_s
            samples = chunk.samples
        else:
            samples = np.concatenate([self._pending, chunk.samples])
        out: list[Utterance] = []
        n = len(samples) // self.frame
        for i in range(n):
            frame = samples[i * self.frame : (i + 1) * self.frame]
            utt = self._frame(frame, self._pos)
            self._pos += self._frame_s
            if utt is not None:
                out.append(utt)
        self._pending = samples[n * self.frame :]
        return out

    def flush(self) -> list[Utterance]:
        """The input ended (or push-to-talk was released): finish the turn in progress."""
        out: list[Utterance] = []
        if self._in_speech:
            utt = self._finish(cut=False)
            if utt is not None:
                out.append(utt)
        self.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        return out

    def _frame(self, frame: Int16Array, t: float) -> Utterance | None:
        db = frame_db(frame)
        said = self._vad.is_speech(frame.tobytes(), self.rate)
        voiced = self._voiced_frame(db, said)
        self.floor.update(db)
        if not self._in_speech:
            self._history.append((t, frame, voiced, db, said))
            recent = list(self._history)[-self._start_frames :]
            # start on start_frames of voiced audio, allowing one unvoiced frame in the run
            if (
                len(recent) == self._start_frames
                and sum(h[2] for h in recent) >= max(1, self._start_frames - 1)
                and recent[0][2]
            ):
                onset_index = len(self._history) - self._start_frames
                keep = list(self._history)[max(0, onset_index - self._pre_frames) :]
                self._frames = [h[1] for h in keep]
                self._levels = [(h[3], h[4]) for h in keep]
                self._start_s = keep[0][0]
                self._onset_s = recent[0][0]
                self._start_floor = self.floor.db
                self._in_speech = True
                self._voiced = sum(h[2] for h in recent)
                self._silence = 0
                self._last_voiced_end = t + self._frame_s
                self._frames_at_last_voiced = self._frames_at_said = len(self._frames)
                self._history.clear()
            return None

        self._frames.append(frame)
        self._levels.append((db, said))
        if voiced and said:
            self._frames_at_said = len(self._frames)
        if self._gate > 0 and self.floor.db > self._start_floor + self._gate:
            self._rejudge()
            voiced = self._voiced_frame(db, said)
        if voiced:
            self._voiced += 1
            self._silence = 0
            self._last_voiced_end = t + self._frame_s
            self._frames_at_last_voiced = len(self._frames)
            self._pause = None
        else:
            self._silence += 1
            if self._silence >= self._draft_frames and self._pause is None and self._voiced >= self._min_voiced:
                self._draft = self._finish(cut=False)
                if self._draft is not None:
                    self._pause = (self._draft.start_s, self._draft.end_s)
        if self._silence and self._silence >= self._needed_silence():
            utt = self._finish(cut=False)
            self.reset()
            return utt
        if len(self._frames) >= self._max_frames:
            utt = self._finish(cut=True)
            # carry on hearing the same speech as a new turn
            self._frames, self._levels = [], []
            self._start_s = self._onset_s = t + self._frame_s
            self._start_floor = self.floor.db
            self._voiced = 0
            self._silence = 0
            self._frames_at_last_voiced = self._frames_at_said = 0
            return utt
        return None

    def _voiced_frame(self, db: float, said: bool) -> bool:
        if self._gate <= 0:
            return said
        if said:
            return db > self.floor.db + self._gate
        coda = self._in_speech and len(self._frames) - self._frames_at_said < self._coda_frames
        return coda and db > self.floor.db + 2 * self._gate

    def _finish(self, *, cut: bool) -> Utterance | None:
        """The turn so far, or None when it has too little speech to be a turn."""
        if self._voiced < self._min_voiced:
            _log.debug("dropped %.2f s of sound: too short to be speech", self._voiced * self._frame_s)
            return None
        if cut:
            return self._emit(len(self._frames), self._start_s + len(self._frames) * self._frame_s, cut=True)
        return self._emit(self._frames_at_last_voiced + self._tail_frames, self._last_voiced_end, cut=False)

    def _rejudge(self) -> None:
        """The background rose during the turn: judge its frames again against the new floor.

        What no longer stands above it was the new noise (a fan, another room tone), not
        the user: the turn's speech ended at the last frame still above it, and the
        silence since then already counts.
        """
        self._start_floor = self.floor.db
        bar = self.floor.db + self._gate / 2  # the new noise already hides the weakest speech
        above = [i for i, (db, said) in enumerate(self._levels) if said and db > bar]
        last = above[-1] + 1 if above else 0
        if last < self._frames_at_last_voiced:
            _log.debug("background rose by %.0f dB: the turn's speech ended %.2f s earlier", self._gate,
                       (self._frames_at_last_voiced - last) * self._frame_s)  # fmt: skip
            self._voiced = len(above)
            self._frames_at_last_voiced = last
            self._last_voiced_end = self._start_s + last * self._frame_s
            self._silence = len(self._frames) - last
            self._pause = None

    def _emit(self, n_frames: int, end_s: float, *, cut: bool) -> Utterance:
        frames = self._frames[: max(1, n_frames)]
        if cut:
            self._last_voiced_end = end_s
        return Utterance(
            samples=np.concatenate(frames),
            rate=self.rate,
            start_s=self._start_s,
            end_s=end_s,
            detected_s=self._pos + self._frame_s,
            detected_at=self._clock(),
            cut=cut,
        )
