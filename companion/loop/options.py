"""What a voice loop is told to do: reply caps, timeouts, speculation, barge-in, greeting."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoopOptions:
    max_sentences: int = 3
    """Stop the reply after this many sentences."""
    stage_timeout_s: float = 20.0
    """A stage busy longer than this is considered hung."""
    speculative_stt: bool = True
    """Transcribe a turn while the detector waits out the end-of-turn silence."""
    speculative_prefill: bool = False
    """Let the LLM read the speculative transcript before the end of the turn is confirmed.
    Off: it cut the first token from ~90 to ~5 ms, but over a 25-turn bench later turns got
    slower (median 1253 vs 971 ms), so it stays an experiment until that is understood."""
    reconnect_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Waits between attempts to reopen a lost microphone (the last one repeats)."""
    barge_in: bool = False
    """Keep listening while speaking; the user's voice interrupts the reply."""
    fade_ms: float = 30.0
    """How fast an interrupted reply fades out."""
    greet: bool = False
    """Say the persona's greeting when the loop starts."""
