"""The shapes a config value can have: each node checks one value and documents it.

A node raises :class:`ShapeError` with the key path (``hosts[0].port``) and what was
expected, so messages read like ``hosts[0].port: expected an integer from 1 to 65535,
got 'abc'``. The tree of nodes that makes the configuration is :data:`deployer.schema.SCHEMA`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class ShapeError(Exception):
    """A value does not have the shape the schema asks for."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass(frozen=True)
class Node:
    """Base of schema nodes: a description for the docs and an optional default."""

    doc: str = ""
    default: Any = None

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError

    def refuse(self, path: str, value: Any, expected: str | None = None) -> ShapeError:
        """``expected <what>, got <value>``: what is expected defaults to the type's name."""
        return ShapeError(path, f"expected {expected or self.type_name()}, got {_show(value)}")

    def type_name(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Node):
    """A string: one line unless ``multiline`` (a value that ends up in a unit file, a
    crontab or a log line must not be able to start a new line there), optionally matching
    ``pattern`` (described to the user as ``pattern_doc``)."""

    non_empty: bool = True
    multiline: bool = False
    pattern: str | None = None
    pattern_doc: str = ""

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self.refuse(path, value, "a string")
        if self.non_empty and not value.strip():
            raise ShapeError(path, "must not be empty")
        if "\0" in value:
            raise ShapeError(path, "must not contain a NUL byte")
        allowed = "\t\n" if self.multiline else ""
        if any((ord(c) < 32 or ord(c) == 127) and c not in allowed for c in value):
            what = "control characters" if self.multiline else "newlines or other control characters"
            raise ShapeError(path, f"must not contain {what}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise self.refuse(path, value, self.pattern_doc or f"a string matching {self.pattern}")

    def type_name(self) -> str:
        return "string"


@dataclass(frozen=True)
class Int(Node):
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: Any, path: str) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and self.minimum is not None and value < self.minimum:
            ok = False
        if ok and self.maximum is not None and value > self.maximum:
            ok = False
        if not ok:
            raise self.refuse(path, value)

    def type_name(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer of at least {self.minimum}"
        return "an integer"


@dataclass(frozen=True)
class Number(Node):
    minimum: float = 0.0
    zero_ok: bool = False

    def check(self, value: Any, path: str) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or value < self.minimum or (value == self.minimum and not self.zero_ok):
            raise self.refuse(path, value)

    def type_name(self) -> str:
        if self.zero_ok:
            return f"a number of at least {self.minimum:g}"
        return f"a number above {self.minimum:g}"


@dataclass(frozen=True)
class Bool(Node):
    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise self.refuse(path, value)

    def type_name(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Enum(Node):
    choices: tuple[str, ...] = ()

    def check(self, value: Any, path: str) -> None:
        if value not in self.choices:
            raise self.refuse(path, value)

    def type_name(self) -> str:
        return "one of " + ", ".join(self.choices)


@dataclass(frozen=True)
class CountOrShare(Node):
    """A number of hosts (``2``) or a share of them (``"25%"``)."""

    def check(self, value: Any, path: str) -> None:
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        share = isinstance(value, str) and re.fullmatch(r"(100|[1-9][0-9]?)%", value) is not None
        if not (count or share):
            raise self.refuse(path, value)

    def type_name(self) -> str:
        return "a host count of at least 1, or a share such as 25%"


@dataclass(frozen=True)
class List(Node):
    item: Node = field(default_factory=Str)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise self.refuse(path, value, "a list")
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]")

    def type_name(self) -> str:
        return f"a list of {self.item.type_name()}"


@dataclass(frozen=True)
class AnyMap(Node):
    """A mapping with free keys (template ``vars``)."""

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self.refuse(path, value, "a mapping")
        for key in value:
            if not isinstance(key, str):
                raise ShapeError(_join(path, str(key)), "keys must be strings")

    def type_name(self) -> str:
        return "a mapping"


@dataclass(frozen=True)
class Map(Node):
    """A mapping with known keys: unknown keys are errors (typos must not pass silently)."""

    fields: dict[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self.refuse(path or "(top level)", value, "a mapping")
        for key, item in value.items():
            if key not in self.fields:
                known = ", ".join(sorted(self.fields))
                raise ShapeError(_join(path, str(key)), f"unknown key (known keys: {known})")
            self.fields[key].check(item, _join(path, key))

    def check_required(self, value: dict, path: str = "") -> None:
        """Required keys are checked on the merged config, where every file has had its say."""
        for key in self.required:
            if key not in value:
                raise ShapeError(_join(path, key), "required key is missing")
        for key, node in self.fields.items():
            if isinstance(node, Map) and isinstance(value.get(key), dict):
                node.check_required(value[key], _join(path, key))
            if isinstance(node, List) and isinstance(node.item, Map):
                for index, item in enumerate(value.get(key) or []):
                    node.item.check_required(item, f"{_join(path, key)}[{index}]")

    def type_name(self) -> str:
        return "a mapping"
