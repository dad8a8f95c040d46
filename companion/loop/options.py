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
    speculative_prefill: bool = True
    """Let the LLM read the draft transcript while the end of the turn is confirmed (unless
    the end-of-turn policy judged it unfinished); the reply to the same words then starts
    with nothing left to evaluate. Same-run A/B over 25 turns: response median 1054 vs
    1240 ms (syntax+llm, llm.threads 1), 3965 vs 5575 ms (defaults, under load 3.5).
    A draft the user went on from costs only its own words: the persona and history stay
    in the KV cache (0-18 tokens evaluated per reply over 25 turns). It once seemed to slow
    long sessions: that was llama.cpp's 2-thread team stalling under load, and stale
    prefills queued in front of the reply; both are gone (``companion.llm.SIDE_THREADS``,
    newest prefill only). ``companion bench`` can A/B it in one run (``BenchOptions.alternate``)."""
    first_clause: bool = True
    """Hand a reply's first clause to the voice once it has ``FIRST_CLAUSE_WORDS`` words,
    before the model has finished its sentence (see :mod:`companion.sentences`)."""
    resume_turns: bool = True
    """A user who talks again before the reply to their turn is heard holds it back, and if
    that becomes a turn the reply is dropped: the turn had not ended (a pause between two
    sentences, or in the middle of one). Needs no echo cancellation: the robot is silent.
    On the pause fixtures (bench, A/B in one run) it cut no one off against 1 of 10, at no
    cost in response time (544 vs 565 ms median). It once held 17 of 20 replies ~800 ms:
    the bench filled the pauses with a room tone 12 dB louder than the recordings' own, and
    the rise after each turn read as speech until the detector dropped it."""
    reconnect_backoff_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """Waits between attempts to reopen a lost microphone (the last one repeats)."""
    barge_in: bool = False
    """Keep listening while speaking; the user's voice interrupts the reply."""
    fade_ms: float = 30.0
    """How fast an interrupted reply fades out."""
    greet: bool = False
    """Say the persona's greeting when the loop starts."""
