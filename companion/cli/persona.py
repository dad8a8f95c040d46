"""``companion persona``: list, show, check, use and try out personas.

``use`` asks the running daemon (over the control API) to switch; the daemon loads
the persona from its own directories (config ``personas_dir``, user, shipped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from companion.persona import (
    SHIPPED_DIR,
    list_personas,
    load_persona,
    load_persona_file,
    transform_text,
    user_dir,
)
from companion.settings import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("persona", help="list, show, check and try personas", description=__doc__)
    parser.add_argument("--config", type=Path, metavar="FILE", help="config file (for personas_dir)")
    parser.add_argument("--dir", type=Path, metavar="DIR", help="extra persona directory (searched first)")
    actions = parser.add_subparsers(dest="persona_action", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="personas: name, description, where from")
    p.set_defaults(func=_list)

    p = actions.add_parser("show", help="the resolved persona as YAML, with its file")
    p.add_argument("name")
    p.set_defaults(func=_show)

    p = actions.add_parser("check", help="validate a persona file (exit 1 with the problem)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_check)

    p = actions.add_parser("use", help="switch the running daemon to persona NAME")
    p.add_argument("name")
    p.set_defaults(func=_use)

    p = actions.add_parser("transform", help="print text as the persona would say it (no audio)")
    p.add_argument("name")
    p.add_argument("text", nargs="*", help="text to transform; default: read standard input")
    p.set_defaults(func=_transform)


def _extra_dir(args: argparse.Namespace) -> Path | None:
    if args.dir is not None:
        return Path(args.dir)
    from companion.config import load_config

    return load_config(args.config).config.personas_dir


def _origin(path: Path, extra: Path | None) -> str:
    parent = path.parent.resolve()
    if parent == SHIPPED_DIR.resolve():
        return "shipped"
    if parent == user_dir().resolve():
        return "user"
    return "extra" if extra is not None and parent == extra.expanduser().resolve() else str(parent)


def _list(args: argparse.Namespace) -> int:
    extra = _extra_dir(args)
    rows = []
    for name, path in list_personas(extra).items():
        try:
            description = load_persona_file(path, extra).description
        except ConfigError as exc:
            description = f"(invalid: {exc.key + ': ' if exc.key else ''}{exc.problem})"
        rows.append((name, _origin(path, extra), description, str(path)))
    if not rows:
        print("no personas found", file=sys.stderr)
        return 1
    width = max(len(r[0]) for r in rows)
    for name, origin, description, where in rows:
        print(f"{name:<{width}}  {origin:<7}  {description}  [{where}]")
    return 0


def _show(args: argparse.Namespace) -> int:
    persona = load_persona(args.name, _extra_dir(args))
    print(f"# {persona.path}")
    data = _tidy(persona.as_data())
    print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), end="")
    return 0


def _tidy(data: Any, in_list: bool = False) -> Any:
    """Leave out the unset (null) keys of list items, e.g. each effect's other effects."""
    if isinstance(data, dict):
        return {k: _tidy(v) for k, v in data.items() if not (in_list and v is None)}
    if isinstance(data, list):
        return [_tidy(v, True) for v in data]
    return data


def _check(args: argparse.Namespace) -> int:
    persona = load_persona_file(args.file, _extra_dir(args))
    print(f"{args.file}: ok ({persona.name})")
    return 0


def _use(args: argparse.Namespace) -> int:
    from companion.config import load_config
    from companion.control.client import ControlClient

    config = load_config(args.config).config
    load_persona(args.name, _extra_dir(args))  # a bad persona is reported here, as one line
    answer = ControlClient(config.control).set_persona(args.name)
    print(f"now speaking as {answer.get('persona') or args.name}")
    return 0


def _transform(args: argparse.Namespace) -> int:
    persona = load_persona(args.name, _extra_dir(args))
    text = " ".join(args.text) if args.text else sys.stdin.read()
    for line in text.splitlines():
        print(transform_text(persona, line) if line.strip() else "")
    return 0
