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

COMMAND_MODULES = (
    "companion.cli.run",
    "companion.cli.config_cmd",
    "companion.cli.service",
)

_log = logging.getLogger("companion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion", description="Offline voice companion for a small robot."
    )
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(verbose: bool = False, quiet: bool = False, level: str | None = None) -> None:
    chosen = logging.DEBUG if verbose else logging.WARNING if quiet else None
    if chosen is None:
        chosen = getattr(logging, (level or "info").upper(), logging.INFO)
    logging.basicConfig(level=chosen, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger().setLevel(chosen)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
