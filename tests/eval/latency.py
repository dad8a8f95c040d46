"""What GroundedChat adds per turn, measured directly over the bench fixtures' transcripts.

    .venv/bin/python tests/eval/latency.py [--persona rocky] [--rounds 3]

Prints median/p95 of the wrapper's own time per turn (rules, memory, reply check:
``TurnInfo.overhead_ms``), of the prompt evaluation when a conversation starts, and the time to the first
sentence with and without the wrapper (the model's own time included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))

from companion.config import LlmSettings  # noqa: E402
from companion.llm import LlamaChat  # noqa: E402
from companion.memory.grounded import GroundedChat, prompt_of  # noqa: E402
from companion.memory.store import MemoryStore  # noqa: E402
from companion.persona import load_persona  # noqa: E402


def texts() -> list[str]:
    data = json.loads((REPO / "tests/fixtures/fixtures.json").read_text())
    return [t["text"] for f in data["files"].values() for t in f.get("turns", [])]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def first_sentence_ms(chat: object, text: str) -> float:
    """Time until the reply's first sentence is complete (the reply is read to its end)."""
    t = time.perf_counter()
    buf, first = "", None
    for piece in chat.reply(text):  # type: ignore[attr-defined]
        buf += piece
        if first is None and any(m in buf for m in ".!?"):
            first = (time.perf_counter() - t) * 1000.0
    return first if first is not None else (time.perf_counter() - t) * 1000.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persona", default="rocky")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--compare", action="store_true", help="also time the plain model's first sentence")
    args = ap.parse_args()
    persona = load_persona(args.persona)
    inner = LlamaChat(LlmSettings(), prompt_of(persona))
    inner.warm()
    list(inner.reply("Hello."))  # the first call pays one-off costs; not part of a turn
    inner.reset()
    plain_first: list[float] = []
    for _ in range(args.rounds if args.compare else 0):
        for text in texts():  # one long conversation, as in the bench; the model trims its history
            plain_first.append(first_sentence_ms(inner, text))
            inner.prefill()
    with tempfile.TemporaryDirectory() as tmp:
        chat = GroundedChat(inner, persona, MemoryStore(Path(tmp) / "m.sqlite3"))
        inner.reset()
        chat.warm()
        over, grounded_first, push = [], [], []
        for _ in range(args.rounds):
            for text in [*texts(), "my name is priya", "i love pizza", "what is my name"]:
                grounded_first.append(first_sentence_ms(chat, text))
                over.append(chat.last.overhead_ms)
                chat.remember_spoken("Okay.")
                chat.prefill()
        for _ in range(3):  # a new conversation: the prompt is rebuilt with the memory and evaluated
            t = time.perf_counter()
            chat.reset()
            push.append((time.perf_counter() - t) * 1000.0)
    rows = [
        ("wrapper time per turn (all of it)", over),
        ("time to first sentence, plain model", plain_first),
        ("time to first sentence, grounded", grounded_first),
        ("new conversation: grounded prompt evaluated", push),
    ]
    for name, xs in rows:
        if not xs:
            continue
        print(f"{name:48s} median {statistics.median(xs):7.2f} ms   p95 {pct(xs, 0.95):7.2f} ms   n={len(xs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
