"""What a benchmark run measured: per turn, cold start, and the run as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field

STAGES = ("vad_wait", "stt", "llm_first_sentence", "tts_first_audio", "playback_start")
"""The parts of the response latency, in the order they happen; per turn they add up to it."""

STAGE_LABELS = {
    "vad_wait": "VAD wait",
    "stt": "STT",
    "llm_first_sentence": "LLM to first sentence",
    "tts_first_audio": "TTS first audio",
    "playback_start": "playback start",
}

STAGE_HELP = {
    "vad_wait": "true end of speech -> the detector declares end of turn",
    "stt": "end of turn -> transcript (what the speculative transcription leaves to wait for)",
    "llm_first_sentence": "transcript -> first complete sentence from the LLM",
    "tts_first_audio": "first sentence -> first synthesised audio",
    "playback_start": "first audio -> first sample at the device (hand-offs + output latency)",
}

EXTRA_STAGES = ("vad_end_error", "vad_silence", "listen_lag", "llm_first_token", "device_delay")
"""Reported beside the stages but not part of the sum (each lies inside one of them).

VAD wait = ``vad_end_error`` + ``vad_silence`` + ``listen_lag``."""

EXTRA_HELP = {
    "vad_end_error": "the detector's end of speech - the true end (audio clock)",
    "vad_silence": "silence the detector waited out after its end of speech (audio clock)",
    "listen_lag": "the decision's wall-clock time - when that audio was spoken (listen thread lag)",
    "llm_first_token": "transcript -> first token (inside LLM to first sentence)",
    "device_delay": "output latency + queued audio the sink reported (inside playback start)",
}

TARGETS = {  # issue 13: a reply within 0.6 s, the daemon in 500 MB, listening 1.5 s after start
    "response_median_ms": 600.0,
    "response_p95_ms": 900.0,
    "cold_start_s": 1.5,
    "peak_rss_mb": 500.0,
}


@dataclass
class TurnResult:
    """One user turn played to the loop, and what came back."""

    fixture: str
    index: int
    """The turn's number within its fixture file (0 for single utterances)."""
    text: str
    """What the user says (the manifest's text)."""
    true_end_s: float
    """Where the user's speech truly ends, on the session's audio clock."""
    heard: str = ""
    reply: str = ""
    response_ms: float | None = None
    """First reply sample at the audio device minus the true end of speech; None if unanswered."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    loop_timings_ms: dict[str, float] = field(default_factory=dict)
    """The loop's own ``TurnRecord.timings_ms`` for this turn."""
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.response_ms is not None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "fixture": self.fixture,
            "index": self.index,
            "text": self.text,
            "true_end_s": round(self.true_end_s, 3),
            "heard": self.heard,
            "reply": self.reply,
            "answered": self.answered,
            "response_ms": None if self.response_ms is None else round(self.response_ms, 1),
            "stages_ms": {k: round(v, 1) for k, v in self.stages_ms.items()},
            "loop_timings_ms": {k: round(v, 1) for k, v in self.loop_timings_ms.items()},
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class ColdStart:
    """``companion run`` started as a fresh process."""

    ready_s: float | None
    """Process start to listening; None if it never got there."""
    ready_from: str
    """How readiness was seen: 'READY=1' (sd_notify) or 'log' (the 'ready as' line)."""
    peak_rss_mb: float | None
    """Peak resident memory of the process over its whole run."""
    models_ms: dict[str, float] = field(default_factory=dict)
    """Model load times the daemon logged."""
    command: list[str] = field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "ready_s": None if self.ready_s is None else round(self.ready_s, 3),
            "ready_from": self.ready_from,
            "peak_rss_mb": None if self.peak_rss_mb is None else round(self.peak_rss_mb, 1),
            "models_ms": self.models_ms,
            "command": self.command,
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class BenchResult:
    machine: dict[str, object]
    models: dict[str, object]
    setup: dict[str, object]
    """Sink, persona, fixtures and loop settings the run used."""
    turns: list[TurnResult] = field(default_factory=list)
    cold_start: ColdStart | None = None
    load: dict[str, float] = field(default_factory=dict)
    """Machine load during the run (see :class:`companion.bench.machine.LoadMeter`)."""
    duration_s: float = 0.0
