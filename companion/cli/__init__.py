"""The ``companion`` command line.

Each subcommand lives in its own module with a ``register(subparsers)`` function
that adds its parser and sets ``func`` (taking the parsed args, returning an exit
code). Expected failures raise :class:`companion.errors.UserError` (or a
``ConfigError``) and are printed as one line, with no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from companion import __version__
from companion.errors import UserError
from companion.settings import ConfigError

COMMANDS = {
    "run": "companion.cli.run",
    "devices": "companion.cli.run",
    "transcribe": "companion.cli.run",
    "chat": "companion.cli.run",
    "say": "companion.cli.say",
    "serve": "companion.cli.say",
    "say-bench": "companion.cli.say",
    "persona": "companion.cli.persona",
    "config": "companion.cli.config_cmd",
    "service": "companion.cli.service",
    "doctor": "companion.cli.service",
    "voice": "companion.cli.voice",
    "bench": "companion.cli.bench",
    "memory": "companion.cli.memory",
}
"""Each subcommand and the module that registers it. Only the module of the command
being run is imported, so ``companion say`` starts in tens of milliseconds."""

COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))

_log = logging.getLogger("companion")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="companion", description="Offline voice companion for a small robot.")
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = (COMMANDS[command],) if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(verbose: bool = False, quiet: bool = False, level: str | None = None) -> None:
    chosen = logging.DEBUG if verbose else logging.WARNING if quiet else None
    if chosen is None:
        chosen = getattr(logging, (level or "info").upper(), logging.INFO)
    logging.basicConfig(level=chosen, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(chosen)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as exc:
        print(f"companion: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
