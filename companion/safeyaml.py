"""Reading settings YAML with bounded size, depth and alias expansion (see :mod:`companion.limits`).

PyYAML's safe loader builds aliases as shared objects, so a "billion laughs" file
is small in memory until something walks it (a check, a merge, an error message
quoting the value) and then takes minutes and gigabytes. Its composer also
recurses once per nesting level. :func:`load_text` counts, while composing, how
deep the document nests and how many values and characters it would hold with
every alias expanded, and stops at the first limit with a :class:`YamlLimitError`
that says where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from companion import limits


class YamlLimitError(yaml.YAMLError):
    """The document goes over a limit; ``problem`` says which, ``problem_mark`` where."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def _parser_class() -> Any:
    """libyaml's parser (6x faster) when PyYAML has it, else the pure-Python one."""
    try:
        from yaml._yaml import CParser

        return CParser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PyParser(Reader, Scanner, Parser):
            def __init__(self, stream: str) -> None:
                Reader.__init__(self, stream)
                Scanner.__init__(self)
                Parser.__init__(self)

        return PyParser


_Parser: Any = _parser_class()


class _LimitedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """PyYAML's safe loader, on that parser, with its composer counting depth, aliases and expanded size."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        Composer.__init__(self)
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters) expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()
        if isinstance(event, AliasEvent):
            self._aliases += 1
            if self._aliases > limits.YAML_MAX_ALIASES:
                raise YamlLimitError(f"more than {limits.YAML_MAX_ALIASES} aliases", event.start_mark)
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise YamlLimitError(f"alias *{event.anchor} refers to a value that holds it", event.start_mark)
            return node
        self._depth += 1
        if self._depth > limits.YAML_MAX_DEPTH:
            raise YamlLimitError(f"nested more than {limits.YAML_MAX_DEPTH} levels deep", event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._measure(node)
        return node

    def _measure(self, node: Node) -> None:
        if isinstance(node, ScalarNode):
            size = (1, len(node.value))
        else:
            children: list[Node] = []
            if isinstance(node, SequenceNode):
                children = list(node.value)
            elif isinstance(node, MappingNode):
                children = [n for pair in node.value for n in pair]
            values, chars = 1, 0
            for child in children:
                v, c = self._sizes.get(id(child), (1, 0))
                values, chars = values + v, chars + c
            size = (values, chars)
        if size[0] > limits.YAML_MAX_NODES:
            raise YamlLimitError(
                f"with its aliases expanded this expands to more than {limits.YAML_MAX_NODES} values", node.start_mark
            )
        if size[1] > limits.YAML_MAX_CHARS:
            raise YamlLimitError(
                f"with its aliases expanded this expands to more than {limits.YAML_MAX_CHARS} characters",
                node.start_mark,
            )
        self._sizes[id(node)] = size


def load_text(text: str) -> Any:
    """One YAML document, safely and within the limits; raises ``yaml.YAMLError``."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class FileTooLarge(Exception):
    """The file is over :data:`~companion.limits.YAML_MAX_BYTES`."""


def read_limited(path: Path, limit: int = limits.YAML_MAX_BYTES) -> str:
    """The text of a regular file of at most ``limit`` bytes (never reads more than that)."""
    if not path.is_file() and path.exists():
        raise OSError(f"{path} is not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data.decode("utf-8")


def size_text(n: float) -> str:
    """1536 -> '1.5 KB'; 3*2**20 -> '3.0 MB'."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover
