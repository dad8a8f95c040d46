"""Turn detection: cuts the microphone stream into user turns with webrtcvad.

The detector works on 10/20/30 ms frames at 16 kHz. A turn starts when ``start_ms``
of (nearly) continuous voiced frames are heard; the audio kept starts ``pre_roll_ms``
before the first voiced frame so the onset is never clipped. It ends after
``end_silence_ms`` of silence. Turns with less than ``min_utterance_ms`` of voiced
audio (a cough, a knock) are dropped; a turn longer than ``max_utterance_s`` is cut
and the rest carries on as the next turn, so nothing is lost.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from companion.config import VadSettings
from companion.messages import AudioChunk, Int16Array, Utterance

_log = logging.getLogger(__name__)

TAIL_MS = 150
"""Audio kept after the last voiced frame (the fade of the final consonant)."""

DRAFT_AFTER_MS = 60
"""Silence after which a draft of the turn is offered for speculative transcription."""


class FrameClassifier(Protocol):
    def is_speech(self, frame: bytes, rate: int) -> bool: ...


def webrtc_classifier(aggressiveness: int) -> FrameClassifier:
    import webrtcvad

    vad: FrameClassifier = webrtcvad.Vad(aggressiveness)
    return vad


class TurnDetector:
    """Feed it audio chunks; it returns finished :class:`Utterance` objects."""

    def __init__(
        self,
        settings: VadSettings,
        *,
        rate: int = 16000,
        classifier: FrameClassifier | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"webrtcvad needs 8/16/32/48 kHz audio, got {rate}")
        self.settings = settings
        self.rate = rate
        self.frame = rate * settings.frame_ms // 1000
        self._vad = classifier or webrtc_classifier(settings.aggressiveness)
        self._clock = clock
        self._frame_s = settings.frame_ms / 1000
        self._start_frames = max(1, -(-settings.start_ms // settings.frame_ms))
        self._end_frames = max(1, -(-settings.end_silence_ms // settings.frame_ms))
        self._pre_frames = settings.pre_roll_ms // settings.frame_ms
        self._tail_frames = min(TAIL_MS // settings.frame_ms, self._end_frames)
        self._max_frames = int(settings.max_utterance_s / self._frame_s)
        self._draft_frames = max(1, DRAFT_AFTER_MS // settings.frame_ms)
        self._min_voiced = settings.min_utterance_ms / settings.frame_ms
        self._pending = np.zeros(0, dtype=np.int16)
        self._pos = 0.0  # source time of the next frame
        self.reset()

    # ---- state ----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget any partial turn (e.g. while the robot is speaking)."""
        self._history: collections.deque[tuple[float, Int16Array, bool]] = collections.deque(
            maxlen=self._pre_frames + self._start_frames
        )
        self._frames: list[Int16Array] = []
        self._start_s = 0.0
        self._in_speech = False
        self._voiced = 0
        self._silence = 0
        self._last_voiced_end = 0.0
        self._frames_at_last_voiced = 0
        self._draft: Utterance | None = None

    def take_draft(self) -> Utterance | None:
        """The turn as it stands if the silence now under way ends it; once per pause.

        The loop transcribes it while the detector waits out ``end_silence_ms``, so the
        transcript is ready when the turn is declared over. The final turn has the same
        ``start_s`` and ``end_s`` as its draft when the user did not speak again.
        """
        draft, self._draft = self._draft, None
        return draft

    @property
    def in_speech(self) -> bool:
        """True while a turn is being heard."""
        return self._in_speech

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
        if self._in_speech and self._voiced >= self._min_voiced:
            out.append(self._emit(self._frames_at_last_voiced + self._tail_frames, cut=False))
        self.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        return out

    def _frame(self, frame: Int16Array, t: float) -> Utterance | None:
        voiced = self._vad.is_speech(frame.tobytes(), self.rate)
        if not self._in_speech:
            self._history.append((t, frame, voiced))
            recent = list(self._history)[-self._start_frames :]
            # start on start_frames of voiced audio, allowing one unvoiced frame in the run
            if (
                len(recent) == self._start_frames
                and sum(v for _, _, v in recent) >= max(1, self._start_frames - 1)
                and recent[0][2]
            ):
                onset_index = len(self._history) - self._start_frames
                keep = list(self._history)[max(0, onset_index - self._pre_frames) :]
                self._frames = [f for _, f, _ in keep]
                self._start_s = keep[0][0]
                self._in_speech = True
                self._voiced = sum(v for _, _, v in recent)
                self._silence = 0
                self._last_voiced_end = t + self._frame_s
                self._frames_at_last_voiced = len(self._frames)
                self._history.clear()
            return None

        self._frames.append(frame)
        if voiced:
            self._voiced += 1
            self._silence = 0
            self._last_voiced_end = t + self._frame_s
            self._frames_at_last_voiced = len(self._frames)
        else:
            self._silence += 1
            if self._silence == self._draft_frames and self._voiced >= self._min_voiced:
                self._draft = self._emit(self._frames_at_last_voiced + self._tail_frames, cut=False)
        if self._silence >= self._end_frames:
            if self._voiced < self._min_voiced:
                _log.debug("dropped %.2f s of sound: too short to be speech", self._voiced * self._frame_s)
                self.reset()
                return None
            utt = self._emit(self._frames_at_last_voiced + self._tail_frames, cut=False)
            self.reset()
            return utt
        if len(self._frames) >= self._max_frames:
            utt = self._emit(len(self._frames), cut=True)
            # carry on hearing the same speech as a new turn
            self._frames = []
            self._start_s = t + self._frame_s
            self._voiced = 0
            self._silence = 0
            self._frames_at_last_voiced = 0
            return utt
        return None

    def _emit(self, n_frames: int, *, cut: bool) -> Utterance:
        frames = self._frames[: max(1, n_frames)]
        samples = np.concatenate(frames)
        end_s = self._start_s + len(frames) * self._frame_s if cut else self._last_voiced_end
        if cut:
            self._last_voiced_end = end_s
        return Utterance(
            samples=samples,
            rate=self.rate,
            start_s=self._start_s,
            end_s=end_s,
            detected_s=self._pos + self._frame_s,
            detected_at=self._clock(),
            cut=cut,
        )
