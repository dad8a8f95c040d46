"""How well an end-of-turn policy ends turns: how long it waits, and whom it cuts off.

Recordings with known turns (a fixtures manifest: ``start_s``/``end_s`` of the speech,
``pauses`` inside it) are fed through the real :class:`~companion.vad.TurnDetector`
frame by frame, as from a microphone. At each pause the draft is transcribed (the real
STT) and the policy's hold is handed back with :meth:`~TurnDetector.set_hold`; with
``latency=True`` the hold only reaches the detector after the STT and the policy took
their measured time, as in the live loop. Per turn:

- *wait*: when the turn was declared over, minus the true end of speech;
- *cut*: the turn was declared over inside one of its own pauses (the user cut off);
- *missed* / *phantom*: a turn not heard at all / a turn heard where nobody spoke.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from companion.audio.io import load_for_stt
from companion.bench.session import read_manifest
from companion.config import VadSettings
from companion.errors import UserError
from companion.messages import AudioChunk, Int16Array, Utterance
from companion.turnend import EndOfTurn, FixedEnd, make_policy
from companion.vad import TurnDetector

RATE = 16000
_MATCH_S = 0.3


@dataclass(frozen=True)
class Turn:
    text: str
    start_s: float
    end_s: float
    pauses: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Recording:
    name: str
    samples: Int16Array
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class TurnOutcome:
    recording: str
    turn: Turn
    pieces: int
    """Detected turns that overlap this one (1 is right; 2+ means it was cut; 0 missed)."""
    waited_s: float | None
    """Declared over minus the true end of speech (for its last piece)."""

    @property
    def paused(self) -> bool:
        return bool(self.turn.pauses)

    @property
    def cut(self) -> bool:
        return self.pieces > 1


@dataclass
class PolicyReport:
    policy: str
    outcomes: list[TurnOutcome] = field(default_factory=list)
    phantoms: int = 0
    decision_ms: list[float] = field(default_factory=list)
    """Per draft: STT plus policy time (what delays the hold in the live loop)."""
    drafts: list[tuple[str, float, str, int]] = field(default_factory=list)
    """(recording, draft end_s, draft text, hold ms) per draft, for reading the policy's reasons."""

    def waits(self, *, paused: bool | None = None) -> list[float]:
        return [
            o.waited_s
            for o in self.outcomes
            if o.waited_s is not None and not o.cut and (paused is None or o.paused == paused)
        ]

    @property
    def cut_rate(self) -> float:
        paused = [o for o in self.outcomes if o.paused]
        return sum(o.cut for o in paused) / len(paused) if paused else 0.0

    @property
    def missed(self) -> int:
        return sum(o.pieces == 0 for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        def ms(values: list[float]) -> dict[str, float | None]:
            return {"median_ms": _pct(values, 50, 1000), "p95_ms": _pct(values, 95, 1000)}

        return {
            "policy": self.policy,
            "turns": len(self.outcomes),
            "paused_turns": sum(o.paused for o in self.outcomes),
            "wait": ms(self.waits()),
            "wait_complete": ms(self.waits(paused=False)),
            "cut_rate": round(self.cut_rate, 3),
            "cut_any": round(sum(o.cut for o in self.outcomes) / max(1, len(self.outcomes)), 3),
            "missed": self.missed,
            "phantoms": self.phantoms,
            "decision": {"median_ms": _pct(self.decision_ms, 50), "p95_ms": _pct(self.decision_ms, 95)},
        }


def _pct(values: Sequence[float], q: int, scale: float = 1.0) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values) * scale, q)), 1)


def load_recordings(
    fixtures_dir: Path, names: Sequence[str] = (), kinds: Sequence[str] = ("session", "utterance")
) -> list[Recording]:
    """The speech fixtures of a manifest (``fixtures.json``) with their turns and pauses."""
    files: dict[str, Any] = read_manifest(fixtures_dir)
    unknown = [n for n in names if n not in files]
    if unknown:
        raise UserError(f"no fixture {', '.join(unknown)} in {fixtures_dir / 'fixtures.json'}")
    chosen = list(names) or [n for n, f in sorted(files.items()) if f.get("kind") in kinds and "source" not in f]
    out = []
    for name in chosen:
        try:
            turns = tuple(
                Turn(
                    str(t.get("text", "")),
                    float(t["start_s"]),
                    float(t["end_s"]),
                    tuple((float(p["start_s"]), float(p["end_s"])) for p in t.get("pauses", [])),
                )
                for t in files[name].get("turns", [])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{fixtures_dir / 'fixtures.json'}: {name}: bad turn ({exc!r})") from None
        if turns:
            out.append(Recording(name, load_for_stt(fixtures_dir / name), turns))
    return out


def with_room(recordings: Sequence[Recording], room: Int16Array, gap_s: float = 2.5, pad_s: float = 0.3) -> Recording:
    """The turns laid end to end with ``room`` tone between them, as the bench plays them."""
    parts: list[Int16Array] = []
    turns: list[Turn] = []
    at = 0
    filler = np.resize(room, round(gap_s * RATE)).astype(np.int16)
    for rec in recordings:
        for t in rec.turns:
            a, b = max(0, round((t.start_s - pad_s) * RATE)), min(len(rec.samples), round((t.end_s + pad_s) * RATE))
            parts += [filler, rec.samples[a:b]]
            shift = (at + len(filler) - a) / RATE
            turns.append(
                Turn(t.text, t.start_s + shift, t.end_s + shift, tuple((p + shift, q + shift) for p, q in t.pauses))
            )
            at += len(filler) + (b - a)
    parts.append(filler)
    return Recording("+".join(r.name for r in recordings) + " in room tone", np.concatenate(parts), tuple(turns))


def evaluate(
    policy: EndOfTurn,
    recordings: Sequence[Recording],
    transcribe: Transcriber,
    settings: VadSettings | None = None,
    *,
    latency: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> PolicyReport:
    """Run ``policy`` over ``recordings``; ``transcribe`` turns a draft into text."""
    base = settings or VadSettings()
    report = PolicyReport(policy.name)
    for rec in recordings:
        fixed = isinstance(policy, FixedEnd)
        vad = replace(base, end_silence_ms=policy.hold) if isinstance(policy, FixedEnd) else base
        detector = TurnDetector(vad, hinted=not fixed, clock=lambda: 0.0)
        heard: list[Utterance] = []
        due: list[tuple[float, Utterance, int]] = []
        frame = RATE * vad.frame_ms // 1000
        for i in range(0, len(rec.samples) - frame + 1, frame):
            now = i / RATE
            for item in [d for d in due if d[0] <= now]:
                due.remove(item)
                detector.set_hold(item[1], item[2])
            heard += detector.feed(AudioChunk(rec.samples[i : i + frame], RATE, now))
            draft = detector.take_draft()
            if draft is None or fixed:
                continue
            text, stt_s = transcribe(draft)
            t0 = clock()
            hold = policy.hold_ms(text)
            decide_s = stt_s + clock() - t0
            report.decision_ms.append(decide_s * 1000)
            report.drafts.append((rec.name, draft.end_s, text, hold))
            due.append((draft.detected_s + (decide_s if latency else 0.0), draft, hold))
        heard += detector.flush()
        report.outcomes += _match(rec, heard)
        report.phantoms += sum(not any(_overlaps(u, t) for t in rec.turns) for u in heard)
    return report


def _overlaps(utt: Utterance, turn: Turn) -> bool:
    return utt.start_s <= turn.end_s + _MATCH_S and utt.end_s >= turn.start_s - _MATCH_S


def _match(rec: Recording, heard: Sequence[Utterance]) -> list[TurnOutcome]:
    out = []
    for t in rec.turns:
        mine = [u for u in heard if _overlaps(u, t)]
        waited = mine[-1].detected_s - t.end_s if mine else None
        out.append(TurnOutcome(rec.name, t, len(mine), waited))
    return out


COLUMNS = ("end of turn", "wait med/p95", "complete turns", "cut paused", "cut any", "missed", "phantom", "decide")


def format_report(reports: Sequence[PolicyReport]) -> str:
    """One line per policy: waits (median/p95 ms), cut-offs, misses, decision cost (ms)."""
    rows = [COLUMNS]
    for r in reports:
        s = r.summary()
        rows.append(
            (
                r.policy,
                _fmt(s["wait"]),
                _fmt(s["wait_complete"]),
                f"{s['cut_rate']:.0%}",
                f"{s['cut_any']:.0%}",
                str(s["missed"]),
                str(s["phantoms"]),
                _fmt(s["decision"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    )


def _fmt(d: dict[str, float | None]) -> str:
    m, p = d["median_ms"], d["p95_ms"]
    return "-" if m is None or p is None else f"{m:.0f} / {p:.0f}"


class Transcriber:
    """Transcribes each distinct draft once and remembers how long that took.

    Every policy then sees the same drafts, and the STT's cost is counted the same way.
    """

    def __init__(self, transcribe: Callable[[Utterance], str], clock: Callable[[], float] = time.perf_counter) -> None:
        self._transcribe = transcribe
        self._clock = clock
        self._memo: dict[bytes, tuple[str, float]] = {}

    def __call__(self, utt: Utterance) -> tuple[str, float]:
        """(text, seconds the STT took for it)."""
        key = hashlib.blake2b(utt.samples.tobytes(), digest_size=16).digest()  # the audio, not its times:
        # drafts of two recordings can share start, end and length (utt_02's text was given to utt_04's)
        if key not in self._memo:
            t0 = self._clock()
            text = self._transcribe(utt)
            self._memo[key] = (text, self._clock() - t0)
        return self._memo[key]


POLICIES = ("silence", "syntax", "llm", "syntax+llm")


def measure(
    recordings: Sequence[Recording],
    transcribe: Callable[[Utterance], str],
    probability: Callable[[str], float] | None,
    settings: VadSettings | None = None,
    *,
    policies: Sequence[str] = POLICIES,
    latency: bool = True,
) -> list[PolicyReport]:
    """Each ``vad.end_of_turn`` policy over the same drafts (each transcribed once).

    ``transcribe``: e.g. ``lambda u: stt.transcribe(u.float32())``; ``probability``:
    ``LlamaChat.end_of_turn_probability`` (the LLM policies are skipped without it).
    """
    base = settings or VadSettings()
    drafts = Transcriber(transcribe)
    reports = []
    for kind in policies:
        if kind in ("llm", "syntax+llm") and probability is None:
            continue
        policy = make_policy(replace(base, end_of_turn=kind), probability)  # type: ignore[arg-type]
        reports.append(evaluate(policy, recordings, drafts, base, latency=latency))
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion.bench.turnend [DIR ...]``: the table for the shipped models."""
    import argparse

    from companion.config import LlmSettings, SttSettings
    from companion.llm import LlamaChat
    from companion.messages import PersonaPrompt
    from companion.persona import load_persona
    from companion.stt import FasterWhisperSTT

    here = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
    parser = argparse.ArgumentParser(description="end-of-turn policies: waits and cut-offs")
    parser.add_argument("dirs", nargs="*", type=Path, default=[here / "pauses", here])
    parser.add_argument("--no-latency", action="store_true", help="holds take effect at once (no STT/LLM time)")
    args = parser.parse_args(argv)
    recordings = [r for d in args.dirs for r in load_recordings(d)]
    stt = FasterWhisperSTT(SttSettings())
    stt.warm()
    persona = load_persona("default")
    prompt = PersonaPrompt(persona.system_prompt, tuple((e.user, e.assistant) for e in persona.examples))
    chat = LlamaChat(LlmSettings(), prompt)
    chat.warm()
    reports = measure(recordings, lambda u: stt.transcribe(u.float32()), chat.end_of_turn_probability,
                      latency=not args.no_latency)  # fmt: skip
    print(format_report(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
