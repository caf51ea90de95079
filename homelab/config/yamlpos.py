"""Safe YAML loading that keeps every value's line and column.

`yaml.compose` gives nodes with marks; we build `Located` values from them ourselves so that
(1) only the YAML core types are accepted (no Python tags: no code runs while reading),
(2) alias expansion is bounded (a "billion laughs" file stops after MAX_NODES values, in
milliseconds, instead of eating memory), and (3) every error can name file:line:col.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from homelab.errors import ConfigError, Problem

MAX_BYTES = 1024 * 1024  # a config is a few KB; a 1 MiB file is a mistake or an attack
MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 64

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True)
class Located:
    """A value with its position; `value` is a scalar, list[Located] or dict[str, Located]."""

    value: Any
    line: int  # 1-based
    col: int  # 1-based
    key_line: int = 0  # for mapping values: where the key is (better place to point at)
    key_col: int = 0

    def plain(self) -> Any:
        """The value without positions (for tests and dumps)."""
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        return self.value


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.count = 0
        self.constructor = SafeConstructor()

    def problem(self, node: yaml.Node, message: str, hint: str = "") -> ConfigError:
        m = node.start_mark
        return ConfigError([Problem(self.filename, m.line + 1, m.column + 1, "", message, hint)])

    def build(self, node: yaml.Node, depth: int = 0) -> Located:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.problem(node, f"too many values after expanding aliases (over {MAX_NODES})",
                               "a config does not need this many values; remove repeated aliases")
        if depth > MAX_DEPTH:
            raise self.problem(node, f"nested deeper than {MAX_DEPTH} levels")
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise self.problem(node, f"tag {node.tag!r} is not allowed", "use plain YAML values only")
            try:
                value = self.constructor.construct_object(node, deep=True)
            except ConstructorError as exc:
                raise self.problem(node, f"cannot read value: {exc.problem}") from None
            return Located(value, line, col)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                raise self.problem(node, f"tag {node.tag!r} is not allowed", "use plain YAML values only")
            return Located([self.build(n, depth + 1) for n in node.value], line, col)
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                raise self.problem(node, f"tag {node.tag!r} is not allowed", "use plain YAML values only")
            out: dict[str, Located] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise self.problem(knode, "merge keys (<<) are not supported", "write the keys out")
                key = self.build(knode, depth + 1)
                if not isinstance(key.value, str):
                    raise self.problem(knode, f"keys must be strings, not {type(key.value).__name__}")
                if key.value in out:
                    raise self.problem(knode, f"duplicate key {key.value!r}", "remove one of them")
                v = self.build(vnode, depth + 1)
                out[key.value] = Located(v.value, v.line, v.col, key.line, key.col)
            return Located(out, line, col)
        raise self.problem(node, "unsupported YAML node")


def load_located(text: str, filename: str) -> Located:
    """Parse YAML text into Located values, or raise ConfigError with a position."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise ConfigError([Problem(filename, 1, 1, "", f"file is larger than {MAX_BYTES // 1024} KiB",
                                   "is this the right file?")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = f"YAML syntax: {exc.problem or exc.context}"
        raise ConfigError([Problem(filename, line, col, "", msg, "check indentation and quoting")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(filename, 1, 1, "", f"YAML: {exc}")]) from None
    if node is None:
        return Located({}, 1, 1)
    return _Builder(filename).build(node)


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def locate(root: Located, dotted: str) -> Located | None:
    """The node at a dotted config path like "mesh.nodes[1].port" (the nearest existing parent)."""
    node: Located | None = root
    for name, index in _STEP.findall(dotted):
        if node is None:
            break
        nxt: Located | None = None
        if name and isinstance(node.value, dict):
            nxt = node.value.get(name)
        elif index and isinstance(node.value, list) and int(index) < len(node.value):
            nxt = node.value[int(index)]
        if nxt is None:
            return node
        node = nxt
    return node
