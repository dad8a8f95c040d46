"""Strict loading of YAML mappings into frozen settings dataclasses.

Every settings object in companion (config sections, persona files) is a frozen
dataclass. :func:`build` turns a plain mapping into one, checking every key and
value, and raises :class:`ConfigError` with a one-line message that names the
file, the dotted key and what is expected, e.g.::

    /etc/companion/config.yaml: vad.aggressiveness: expected an integer from 0 to 3, got 7

Field checks live in the field's metadata (``check``), next to the default, so one
place holds each default and its rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from companion import limits

T = TypeVar("T")
Check = Callable[[Any], "str | None"]


class ConfigError(Exception):
    """A settings file is wrong. ``str()`` is one line: file, key, problem."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = one_line(key, limits.ERROR_MAX_CHARS // 3)
        self.problem = one_line(problem, limits.ERROR_MAX_CHARS)
        where = f"{source}: {self.key}: " if self.key else f"{source}: "
        super().__init__(where + self.problem)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (line breaks escaped) and at most about ``limit`` characters."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 2
_SHORT.maxstring = limits.SHOWN_VALUE_CHARS
_SHORT.maxother = limits.SHOWN_VALUE_CHARS
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4


def short(value: Any) -> str:
    """``repr(value)`` cut to a readable size, without building the whole repr of a huge value."""
    text = _SHORT.repr(value)
    return one_line(text, limits.SHOWN_VALUE_CHARS + 20)


def setting(default: Any = dataclasses.MISSING, *, check: Check | None = None, doc: str = "") -> Any:
    """A dataclass field with an optional value check and a one-line doc."""
    meta = {"check": check, "doc": doc}
    if isinstance(default, list | dict | set):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---- ready-made checks -------------------------------------------------------------


def between(lo: float, hi: float) -> Check:
    def check(v: Any) -> str | None:
        if not lo <= v <= hi:
            return f"expected a number from {lo:g} to {hi:g}, got {short(v)}"
        return None

    return check


def positive(v: Any) -> str | None:
    return None if v > 0 else f"expected a number above 0, got {short(v)}"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 else f"expected 0 or more, got {short(v)}"


def one_of(*allowed: Any) -> Check:
    def check(v: Any) -> str | None:
        if v not in allowed:
            return f"expected one of {', '.join(map(repr, allowed))}, got {short(v)}"
        return None

    return check


# ---- conversion --------------------------------------------------------------------


class _Bad(Exception):
    """Internal: a value did not fit; carries the key path inside the value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key
        self.problem = problem


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path"
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        last: _Bad | None = None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except _Bad as exc:
                if exc.key != key:  # the value had the right shape; report the inner problem
                    raise
                last = exc
        raise _Bad(key, f"expected {_describe(tp)}, got {short(value)}") from last
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return _plain(value, key)
    elif tp is Path:
        if isinstance(value, str) and value:
            return Path(_plain(value, key)).expanduser()
    elif origin is Literal:
        if value in get_args(tp):
            return value
    elif isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            pass
    elif origin is tuple:
        if isinstance(value, list | tuple):
            args = get_args(tp)
            item = args[0] if args else Any
            return tuple(_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    elif origin is list:
        if isinstance(value, list | tuple):
            args = get_args(tp)
            item = args[0] if args else Any
            return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, Mapping):
            kt, vt = get_args(tp) or (Any, Any)
            return {_convert(kt, k, f"{key}.{k}"): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, Mapping):
            return _build(typing.cast(type, tp), value, key)
    else:  # pragma: no cover - a programming error in a settings class
        raise TypeError(f"unsupported settings type {tp!r} at {key}")
    raise _Bad(key, f"expected {_describe(tp)}, got {short(value)}")


def _plain(text: str, key: str) -> str:
    """``text`` unless it holds a NUL or a lone surrogate (which no file, voice or device takes)."""
    if "\x00" in text:
        raise _Bad(key, f"has a NUL character (at {text.index(chr(0))}); expected plain text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _Bad(key, f"is not valid Unicode: a lone surrogate at {exc.start}") from None
    return text


def _build(cls: type[T], data: Mapping[str, Any], prefix: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    for name in data:
        if name not in fields:
            key = f"{prefix}.{name}" if prefix else str(name)
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            raise _Bad(key, "unknown key" + hint)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Bad(key, f"missing; expected {_describe(hints[name])}")
            continue
        value = _convert(hints[name], data[name], key)
        check = f.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise _Bad(key, problem)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _Bad(prefix, str(exc)) from exc


def build(cls: type[T], data: Any, *, source: str, prefix: str = "") -> T:
    """Build settings ``cls`` from ``data``; raise :class:`ConfigError` naming ``source``."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, prefix, f"expected a mapping of keys, got {type(data).__name__}")
    try:
        return _build(cls, data, prefix)
    except _Bad as exc:
        raise ConfigError(source, exc.key, exc.problem) from None


def read_yaml(path: Path) -> Any:
    """Read a YAML file within :mod:`companion.limits`; any problem becomes a one-line :class:`ConfigError`."""
    from companion.safeyaml import FileTooLarge, YamlLimitError, load_text, read_limited, size_text

    try:
        text = read_limited(path)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except FileTooLarge:
        size = size_text(path.stat().st_size)
        limit = size_text(limits.YAML_MAX_BYTES)
        raise ConfigError(str(path), "", f"the file is {size}; settings files are limited to {limit}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"cannot read: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return load_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        kind = "" if isinstance(exc, YamlLimitError) else "not valid YAML: "
        raise ConfigError(str(path), "", f"{kind}{where}{problem}") from None


def load(cls: type[T], path: Path, *, section: str | None = None) -> T:
    """Load ``cls`` from the YAML file at ``path`` (optionally one top-level section)."""
    data = read_yaml(path)
    if section is not None and isinstance(data, Mapping):
        data = data.get(section)
    return build(cls, data, source=str(path))


def to_dict(obj: Any) -> Any:
    """Settings back to plain YAML-able data (paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj
