"""``companion say`` (one line in the persona's voice), ``serve`` (voice-only control API), ``say-bench``.

``say`` hands the text to the running daemon (or ``companion serve``) over the
control API when one answers, so no model is loaded per call; otherwise it loads
the voice itself (cold). Its import path stays light: nothing heavy is imported
until it knows which way it goes.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from companion.errors import UserError
from companion.sentences import split_sentences

if TYPE_CHECKING:
    from companion.config import Config
    from companion.control.client import ControlClient

_log = logging.getLogger(__name__)

NO_SPEAKER_HINT = "write a WAV file instead: companion say -o FILE.wav TEXT"


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--config`` and ``--persona`` (as in ``companion.cli.run``, without importing it: it pulls numpy)."""
    p.add_argument("--config", type=Path, help="config file (default: the search path, see README)")
    p.add_argument("--persona", help="persona name (default: config's persona)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "say",
        help="say a line in the persona's voice (via the daemon if it runs)",
        description="Say TEXT in the persona's voice and style, on the speaker or into a WAV file. "
        "Uses the running daemon (or 'companion serve') when there is one; otherwise loads the voice here.",
    )
    p.add_argument("text", nargs="*", help="what to say (default: -f FILE, or standard input)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE.wav", help="write a WAV file instead of playing")
    p.add_argument("-s", "--speed", metavar="FLOAT", help="speaking rate, 0.5-2.0, pitch kept (default: persona's)")
    p.add_argument("--raw", action="store_true", help="skip the persona's style transform")
    p.add_argument("--transform-only", action="store_true", help="print the text as the persona says it; no audio")
    p.add_argument("-f", "--file", type=Path, metavar="PATH", help="read the text from a file ('-' = stdin)")
    add_config_args(p)
    p.add_argument("--no-daemon", action="store_true", help="do not use a running daemon (always load the voice)")
    p.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="say which way it went and how long it took"
    )
    p.set_defaults(func=cmd_say, usage=p.format_usage)

    p = sub.add_parser("serve", help="control API with the voice only (no mic, STT or LLM)")
    add_config_args(p)
    p.add_argument(
        "--wyoming",
        metavar="tcp://HOST:PORT",
        help="also serve the persona voices as a Wyoming TTS service (no authentication: keep HOST 127.0.0.1 "
        "unless the network is yours)",
    )
    p.add_argument(
        "--zeroconf",
        nargs="?",
        const="companion",
        metavar="NAME",
        help="advertise the Wyoming service over mDNS as NAME._wyoming._tcp (default: companion; off unless given)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("say-bench", help="measure cold and warm 'companion say' times")
    add_config_args(p)
    p.add_argument("--runs", type=int, default=7, help="runs of each kind (default 7)")
    p.add_argument("--text", default="Hello, how are you doing today?", help="the line to say")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.set_defaults(func=cmd_say_bench)


# ---- say ------------------------------------------------------------------------------------


def cmd_say(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", False))
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    speed = parse_speed(args.speed)
    text = read_text(args)
    if text is None or not split_sentences(text):
        sys.stderr.write(args.usage())
        print("companion say: nothing to say: give TEXT, -f FILE, or pipe text in", file=sys.stderr)
        return 2

    from companion.config import load_config

    config = load_config(args.config).config
    if args.transform_only:
        return _transform_only(config, args, text)
    if args.no_daemon or not config.control.enabled:
        _note(verbose, "not asking a daemon; loading the voice here (cold start)")
    elif len(text.encode("utf-8")) > config.control.max_body_bytes - 1024:
        _note(verbose, "the text is larger than control.max_body_kb; loading the voice here (cold start)")
    else:
        from companion.control.client import ControlClient, DaemonNotRunning

        client = ControlClient(config.control)
        try:
            return _say_warm(client, args, text, speed, verbose)
        except DaemonNotRunning as exc:
            _note(verbose, f"{exc}; loading the voice here (cold start)")
    return _say_cold(config, args, text, speed, verbose)


def parse_speed(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = math.nan
    if not 0.5 <= speed <= 2.0:
        raise UserError(f"--speed: expected a number from 0.5 to 2.0, got {value!r}", exit_code=2)
    return speed


def read_text(args: argparse.Namespace) -> str | None:
    """The text from the arguments, ``-f FILE`` or standard input (None: none given)."""
    if args.file is not None and args.text:
        raise UserError("give the text or -f FILE, not both", exit_code=2)
    if args.file is not None:
        if str(args.file) == "-":
            return sys.stdin.read()
        try:
            return args.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{args.file}: no such file", exit_code=2) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{args.file}: cannot read it as text ({exc})", exit_code=2) from None
    if args.text:
        return " ".join(args.text)
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin.read()


def _note(verbose: bool, message: str) -> None:
    if verbose:
        print(f"companion say: {message}", file=sys.stderr, flush=True)


def _show(persona: str, spoken: str, changed: bool) -> None:
    """``Rocky: Hello, how you doing today, question?`` when the style changed the words."""
    if changed:
        print(f"{persona}: {spoken}", file=sys.stderr, flush=True)


def _write(path: Path, wav: bytes) -> None:
    try:
        path.write_bytes(wav)
    except OSError as exc:
        raise UserError(f"{path}: cannot write it ({exc.strerror or exc})") from None
    print(path)


def _no_speaker(reason: str) -> UserError:
    return UserError(f"cannot play: {reason.split(';')[0]}; {NO_SPEAKER_HINT}", exit_code=2)


def _transform_only(config: Config, args: argparse.Namespace, text: str) -> int:
    from companion.app import load_persona_for
    from companion.script import prepare

    script = prepare(load_persona_for(config, args.persona), text, raw=args.raw)
    print(script.spoken_text)
    return 0


def _say_warm(client: ControlClient, args: argparse.Namespace, text: str, speed: float | None, verbose: bool) -> int:
    from companion.control.client import NO_SPEAKER, ControlRequestError

    t = time.perf_counter()
    if args.output is not None:
        said = client.synthesize(text, persona=args.persona, speed=speed, raw=args.raw)
        _show(said.persona, said.spoken, said.changed)
        _write(args.output, said.wav)
    else:
        try:
            answer = client.play(text, persona=args.persona, speed=speed, raw=args.raw)
        except ControlRequestError as exc:
            if exc.reason == NO_SPEAKER:
                raise _no_speaker(str(exc)) from None
            raise
        _show(str(answer.get("persona", "")), str(answer.get("spoken", "")), bool(answer.get("changed")))
    _note(verbose, f"warm: said through {client.address} in {(time.perf_counter() - t) * 1000:.0f} ms")
    return 0


def _say_cold(config: Config, args: argparse.Namespace, text: str, speed: float | None, verbose: bool) -> int:
    from companion.app import build_tts, load_persona_for
    from companion.control.speech import play, synthesize_all, wav_bytes
    from companion.errors import NoAudioDeviceError
    from companion.script import prepare

    t = time.perf_counter()
    persona = load_persona_for(config, args.persona)
    script = prepare(persona, text, raw=args.raw)
    if not script.written:
        raise UserError("nothing to say: the text has no words", exit_code=2)
    sink = None
    if args.output is None:
        from companion.control.tts_backend import speaker_factory

        try:
            sink = speaker_factory(config)()
        except NoAudioDeviceError as exc:
            raise _no_speaker(str(exc)) from None
    _show(persona.name, script.spoken_text, script.changed)
    synth = build_tts(config, persona)
    loaded = time.perf_counter()
    if sink is None:
        audio = synthesize_all(synth, script.spoken, speed)
        _write(args.output, wav_bytes(audio, synth.sample_rate))
    else:
        try:
            play(synth, script.spoken, sink, speed=speed)
        except NoAudioDeviceError as exc:
            raise _no_speaker(str(exc)) from None
        finally:
            sink.close()
    _note(
        verbose,
        f"cold: voice loaded in {(loaded - t) * 1000:.0f} ms, said in {(time.perf_counter() - loaded) * 1000:.0f} ms",
    )
    return 0


# ---- serve ----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from companion.cli.run import _apply_log_level
    from companion.config import load_config
    from companion.control.server import ControlServer
    from companion.control.tts_backend import TtsBackend

    loaded = load_config(args.config)
    config = loaded.config
    _apply_log_level(args, loaded)
    if args.zeroconf and not args.wyoming:
        raise UserError("--zeroconf advertises the Wyoming service: give --wyoming tcp://HOST:PORT too", exit_code=2)
    if not config.control.enabled and not args.wyoming:
        raise UserError(f"{loaded.path}: control.enabled is false: nothing would use this server")
    backend = TtsBackend(config, args.persona or config.persona)
    server = ControlServer(backend, config.control) if config.control.enabled else None
    wyoming = None
    if args.wyoming:
        from companion.remote.server import WyomingVoiceServer

        try:
            wyoming = WyomingVoiceServer(backend, args.wyoming, zeroconf=args.zeroconf)
        except ValueError as exc:
            raise UserError(str(exc), exit_code=2) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        _log.info("got %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if server is not None:
        server.start()
    try:
        if wyoming is not None:
            try:
                wyoming.start()
            except OSError as exc:
                raise UserError(f"--wyoming {args.wyoming}: cannot listen ({exc.strerror or exc})") from None
        where = ", ".join(
            ([server.address] if server is not None else []) + ([f"wyoming {wyoming.uri}"] if wyoming else [])
        )
        print(
            f"companion serve: {where} speaking as {backend.persona.name} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        if wyoming is not None:
            wyoming.stop()
        if server is not None:
            server.stop()
        backend.close()
    return 0


# ---- say-bench ------------------------------------------------------------------------------


def cmd_say_bench(args: argparse.Namespace) -> int:
    from companion.control.bench import bench_say, report

    if args.runs < 1:
        raise UserError("--runs: expected at least 1", exit_code=2)
    result = bench_say(runs=args.runs, text=args.text, config=args.config, persona=args.persona)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
    else:
        print(report(result))
    return 0
