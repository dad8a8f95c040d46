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
    p.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="keep the replies here (file sink); with --barge-in: the daemon logs and the room recordings",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the numbers as JSON")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw where the time goes (needs matplotlib)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold start / peak memory measurement")
    p.add_argument(
        "--alternate",
        metavar="OPTION",
        help="A/B in one run: switch a yes/no loop option (e.g. first_clause, speculative_prefill) on for every"
        " second turn and off for the others; the report compares the two halves",
    )
    p.add_argument(
        "--remote",
        action="append",
        default=[],
        metavar="STAGE=ADDRESS",
        help="run a stage on a server: stt=tcp://HOST:PORT, llm=http://HOST:PORT/v1, tts=tcp://HOST:PORT (repeatable)",
    )
    p.add_argument(
        "--compare-remote",
        action="store_true",
        help="embedded vs every stage on a loopback server (started here), side by side, plus fallback times",
    )
    p.add_argument(
        "--soak",
        type=int,
        metavar="N",
        help="instead: N turns (fixtures cycled) through one daemon; RSS per turn and its slope after warm-up",
    )
    p.add_argument("--warmup", type=int, metavar="N", help="with --soak: turns left out of the slope")
    p.add_argument("--fast", action="store_true", help="with --soak: do not pace the turns by the clock")
    p.add_argument(
        "--barge-in",
        action="store_true",
        help="instead: talk over the robot on a private PulseAudio server with an echo path; reaction time, "
        "false barge-ins, ERLE, echo canceller CPU",
    )
    p.add_argument("--replies", type=int, default=20, metavar="N", help="with --barge-in: replies with nobody talking")
    p.add_argument("--interruptions", type=int, default=10, metavar="N", help="with --barge-in: interruptions")
    p.add_argument(
        "--echo-db", type=float, action="append", metavar="DB", help="with --barge-in: echo level(s) (default -6 and 0)"
    )
    p.add_argument(
        "--pause-ms",
        type=int,
        action="append",
        metavar="MS",
        help="with --barge-in: listen.barge_in_pause_ms for the daemon; repeat to compare (e.g. 0 and 120)",
    )
    p.add_argument(
        "--turn-end",
        action="store_true",
        help="instead: each end-of-turn policy on the pause fixtures: how long it waited, how often it cut in",
    )
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from companion.bench.report import format_report, to_json
    from companion.bench.runner import BenchOptions, run_bench

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.soak is not None:
        return cmd_soak(args)
    if args.barge_in:
        return cmd_barge_in(args)
    if args.turn_end:
        from companion.bench.turnend import main as turn_end

        dirs = (
            [str(args.fixtures / "pauses"), str(args.fixtures)]
            if args.fixtures == DEFAULT_FIXTURES
            else [str(args.fixtures)]
        )
        return turn_end(dirs)
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
        alternate=args.alternate,
    )
    if args.remote or args.compare_remote:
        from companion.bench.remote import cmd_remote

        return cmd_remote(args, options)
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


def cmd_soak(args: argparse.Namespace) -> int:
    from companion.bench.soak import SoakOptions, format_soak, run_soak

    if args.soak < 2:
        raise UserError("--soak needs at least 2 turns")
    if args.warmup is not None and args.warmup < 0:
        raise UserError("--warmup must be 0 or more")
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    options = SoakOptions(
        fixtures_dir=args.fixtures,
        turns=args.soak,
        warmup=args.warmup,
        fast=args.fast,
        names=tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else (),
        config=args.config,
        persona=args.persona,
    )
    result = run_soak(options, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_soak(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.as_json(), indent=2) + "\n", encoding="utf-8")
        print(f"numbers: {args.json}")
    return 0


def cmd_barge_in(args: argparse.Namespace) -> int:
    import contextlib
    import itertools
    import tempfile

    from companion.bench.bargein import report, run_barge_in
    from companion.bench.pulse import PulseUnavailable

    if args.replies < 0 or args.interruptions < 0:
        raise UserError("--replies and --interruptions must be 0 or more")
    if any(not 0 <= ms <= 2000 for ms in args.pause_ms or []):
        raise UserError("--pause-ms must be between 0 and 2000 (0: no pause)")
    runs = []
    with contextlib.ExitStack() as stack:
        if args.output_dir is not None:  # keep the daemon's logs and the room's recordings
            tmp = str(args.output_dir)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="companion-barge-in-"))
        pauses: list[int | None] = list(args.pause_ms or [None])
        for gain, pause in itertools.product(args.echo_db or [-6.0, 0.0], pauses):
            name = f"echo{gain:+.0f}" + ("" if pause is None else f"-pause{pause}")
            print(f"{name} ...", file=sys.stderr, flush=True)
            try:
                runs.append(
                    run_barge_in(
                        Path(tmp) / name,
                        gain_db=gain,
                        replies=args.replies,
                        interruptions=args.interruptions,
                        pause_ms=pause,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True),
                    )
                )
            except PulseUnavailable as exc:
                raise UserError(f"--barge-in needs PulseAudio: {exc}") from None
    print("\n".join(report(runs)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.summary() for r in runs], indent=2) + "\n", encoding="utf-8")
        print(f"numbers: {args.json}")
    return 0
