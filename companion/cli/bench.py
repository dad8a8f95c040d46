"""``companion bench``: response latency per stage and end to end, cold start, peak memory."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from companion.cli.run import add_config_args
from companion.config import REPO_DIR
from companion.errors import UserError

DEFAULT_FIXTURES = REPO_DIR / "tests" / "fixtures"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure how fast the robot answers (per stage and end to end)",
        description=(
            "Speak recorded turns into the real voice loop in real time and time each reply: "
            "response latency = first reply sample at the audio device - true end of the user's speech. "
            "Also times a cold start of 'companion run' and its peak memory."
        ),
    )
    add_config_args(p)
    p.add_argument(
        "--fixtures",
        type=Path,
        default=DEFAULT_FIXTURES,
        metavar="DIR",
        help="recordings with a fixtures.json manifest (default: the repo's tests/fixtures)",
    )
    p.add_argument("--only", metavar="NAME[,NAME]", help="use only these fixture files (e.g. utt_01.wav,utt_02.wav)")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N turns")
    p.add_argument(
        "--device",
        default="auto",
        metavar="DEV",
        help="speaker: 'auto' (the default output if it opens, else files), 'none' (files), or an index/name",
    )
    p.add_argument("--output-dir", type=Path, metavar="DIR", help="keep the replies here (file sink)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the numbers as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw where the time goes (needs matplotlib)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold start / peak memory measurement")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from companion.bench.report import format_report, to_json
    from companion.bench.runner import BenchOptions, run_bench

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UserError("--plot needs matplotlib: pip install 'companion[bench]'") from None
    if not args.verbose:  # the loop's per-turn INFO lines would bury the progress
        logging.getLogger().setLevel(logging.WARNING)
    options = BenchOptions(
        fixtures_dir=args.fixtures,
        names=tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else (),
        limit=args.limit,
        device=args.device,
        output_dir=args.output_dir,
        config=args.config,
        persona=args.persona,
        cold_start=not args.no_cold_start,
    )
    result = run_bench(options, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(result), indent=2) + "\n", encoding="utf-8")
        print(f"numbers: {args.json}")
    if args.plot is not None:
        from companion.bench.plot import plot_turns

        print(f"plot: {plot_turns(result, args.plot)}")
    return 0
