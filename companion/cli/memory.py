"""``companion memory``: what the robot remembers about you, and forgetting it.

Works whether the daemon runs or not: the memory is one SQLite file (WAL mode) in the
state directory (``memory.file``), which both may use at once. A running daemon
sees a forget on its next turn.

    companion memory show            # every remembered thing, with its id
    companion memory forget          # everything about you, in this persona's scope
    companion memory forget 12 14    # just those
    companion memory forget --all    # every scope, every summary
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from companion.errors import UserError

if TYPE_CHECKING:
    from companion.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("memory", help="show or forget what the robot remembers", description=__doc__)
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (for memory.file, state_dir)")
    actions = parser.add_subparsers(dest="memory_action", metavar="ACTION", required=True)

    p = actions.add_parser("show", help="remembered facts and conversation summaries")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=_show)

    p = actions.add_parser("forget", help="forget everything about you (or the given ids)")
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="only these (ids from 'show')")
    p.add_argument("--all", action="store_true", help="every scope (all personas), not only the current one")
    p.add_argument("--persona", metavar="NAME", help="the persona whose memory to forget (memory.scope: persona)")
    p.set_defaults(func=_forget)


def _config(args: argparse.Namespace) -> Config:
    from companion.config import load_config

    return load_config(args.config).config


def _show(args: argparse.Namespace) -> int:
    from companion.memory.build import memory_path, open_store

    config = _config(args)
    path = memory_path(config)
    if not path.exists():
        print(f"nothing remembered ({path} does not exist)")
        return 0
    store = open_store(config)
    items, summaries = store.items(), store.summaries()
    store.close()
    if args.json:
        data = {
            "file": str(path),
            "items": [vars(i) for i in items],
            "summaries": [vars(s) for s in summaries],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"# {path}")
    if not items and not summaries:
        print("nothing remembered")
    for i in items:
        verb = f" ({i.verb})" if i.verb else ""
        print(f"{i.id:>5}  [{i.scope}] {i.kind}{verb}: {i.value}   {_when(i.created)}")
    for s in summaries:
        print(f"    -  [{s.scope}] conversation {_when(s.updated)}: {s.text}")
    return 0


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _forget(args: argparse.Namespace) -> int:
    from companion.memory.build import memory_path, open_store

    config = _config(args)
    if not memory_path(config).exists():
        print("nothing to forget")
        return 0
    if args.all and (args.ids or args.persona):
        raise UserError("memory forget: --all forgets everything; give it no ids and no --persona")
    store = open_store(config)
    try:
        if args.ids:
            missing = [i for i in args.ids if not store.delete(i)]
            if missing:
                raise UserError(f"memory forget: no remembered item with id {', '.join(map(str, missing))}")
            print(f"forgot {len(args.ids)} item(s)")
            return 0
        if args.all:
            scope = None
        elif config.memory.scope == "persona":
            scope = (args.persona or config.persona).lower()
        else:
            scope = "shared"
        n = store.forget(scope)
        print(f"forgot {n} record(s)" + ("" if scope is None else f" in scope '{scope}'"))
    finally:
        store.close()
    return 0
