"""Safe YAML loading that keeps every value's line and column.

`yaml.compose` gives nodes with marks; we build `Located` values from them ourselves so that
(1) only the YAML core types are accepted (no Python tags: no code runs while reading),
(2) alias expansion is bounded (a "billion laughs" file stops after MAX_NODES values, in
milliseconds, instead of eating memory), (3) nesting is bounded while composing (PyYAML's
composer recurses; 300 nested `[` would otherwise end in a RecursionError), and (4) every
error names file:line:col in the config's own words: a YAML problem is reported where it
starts (the line where an unclosed quote opens, not the end of the file).
"""
from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from homelab.errors import ConfigError, Problem, UsageError

MAX_BYTES = 256 * 1024  # a config is a few KB; PyYAML reads ~300 KB/s here, so this stays ~1 s
MAX_NODES = 100_000  # values after alias expansion
MAX_DEPTH = 64
_ODD_BREAK = re.compile("[\x85\u2028\u2029]")
SHOW_CHARS = 40  # values quoted in messages are cut to this many characters

HOW_TO_START = "start from config.example.yaml, or run `homelab` on a terminal: its wizard writes one"

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_CORE = "tag:yaml.org,2002:"


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


# --------------------------------------------------------------- words -----
def describe_type(v: Any) -> str:
    """A value's kind in the config's words (never Python's: no 'NoneType', no 'True')."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "true/false", int: "an integer",
            float: "a number", type(None): "empty"}.get(type(v), "a value of another kind")


def show(v: Any, limit: int = SHOW_CHARS) -> str:
    """A value as the config spells it, cut short: `'aaaa…' (300 characters)`, `true`, `empty`."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "empty"
    if not isinstance(v, str):
        v = str(v)
        return v if len(v) <= limit else f"{v[:limit]}… ({len(v)} characters)"
    if len(v) <= limit:
        return repr(v)
    return f"{v[:limit]!r}… ({len(v)} characters)"


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


# --------------------------------------------------------------- loading ---
class _TooDeep(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__("too deep")
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer stops at MAX_DEPTH, before Python's recursion limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Builder:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.count = 0
        self.constructor = SafeConstructor()

    def problem(self, node: yaml.Node, message: str, hint: str = "") -> ConfigError:
        m = node.start_mark
        return ConfigError([Problem(self.filename, m.line + 1, m.column + 1, "", message, hint)])

    def _check_tag(self, node: yaml.Node, allowed: set[str]) -> None:
        if node.tag in allowed:
            return
        if node.tag == _CORE + "timestamp":
            raise self.problem(node, f"{show(node.value)} reads as a date, which no setting takes",
                               "quote it to make it text")
        raise self.problem(node, f"the tag {show(_tag_name(node.tag))} is not allowed", "use plain YAML values only")

    def scalar(self, node: yaml.ScalarNode) -> Any:
        self._check_tag(node, _SCALAR_TAGS)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (ConstructorError, ValueError, KeyError, TypeError, OverflowError):
            # e.g. `!!int abc`: an explicit tag the text does not fit
            raise self.problem(node, f"{show(node.value)} cannot be read as {_tag_name(node.tag)}",
                               "drop the tag, or fix the value") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.problem(node, f"{node.value} is not a usable number (infinite and not-a-number "
                                     "values are refused)", "write a plain number like 10 or 2.5")
        return value

    def build(self, node: yaml.Node, depth: int = 0) -> Located:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.problem(node, f"too many values after expanding aliases (over {MAX_NODES})",
                               "a config does not need this many values; remove repeated aliases")
        if depth > MAX_DEPTH:
            raise self.problem(node, f"nested deeper than {MAX_DEPTH} levels", "a config needs a few levels only")
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, yaml.ScalarNode):
            return Located(self.scalar(node), line, col)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, {_CORE + "seq"})
            return Located([self.build(n, depth + 1) for n in node.value], line, col)
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, {_CORE + "map"})
            out: dict[str, Located] = {}
            for knode, vnode in node.value:
                if knode.tag == _CORE + "merge":
                    raise self.problem(knode, "merge keys (<<) are not supported", "write the keys out")
                key = self.build(knode, depth + 1)
                if isinstance(knode, yaml.ScalarNode) and knode.value and not isinstance(key.value, str):
                    # every key is a name: `on:` or `1:` is read as written (then judged as a name),
                    # not as the boolean or number YAML would make of it
                    key = Located(knode.value, key.line, key.col)
                if not isinstance(key.value, str):
                    raise self.problem(knode, f"a key should be a name, not {describe_type(key.value)}",
                                       "write keys as plain words, like `name:`")
                if key.value in out:
                    raise self.problem(knode, f"duplicate key {show(key.value)}", "remove one of them")
                v = self.build(vnode, depth + 1)
                out[key.value] = Located(v.value, v.line, v.col, key.line, key.col)
            return Located(out, line, col)
        raise self.problem(node, "unsupported YAML node")


def describe_yaml_error(exc: yaml.MarkedYAMLError) -> tuple[Any, str, str]:
    """(mark, message, hint) for a PyYAML error: where the problem starts, in plain words."""
    problem = exc.problem or ""
    context = exc.context or ""
    at = exc.problem_mark or exc.context_mark
    opened = exc.context_mark
    if "quoted scalar" in context and "end of stream" in problem and opened is not None:
        return opened, "this quoted value is never closed", "add the closing quote, or remove the stray one"
    if "unknown escape character" in problem:
        return at, f"{problem[len('found '):]} in a double-quoted value", \
            "use single quotes, or write \\\\ for a backslash"
    if context.startswith("while parsing a flow") and opened is not None:
        bracket, closing = ("[", "]") if "sequence" in context else ("{", "}")
        where = f" (line {at.line + 1})" if at is not None else ""
        return opened, f"the {bracket} here is not closed where expected{where}", \
            f"close it with {closing}, or put a comma between items"
    if "'\\t'" in problem:
        return at, "a tab character; YAML indents with spaces only", "replace tabs with spaces"
    if "cannot start any token" in problem:
        char = problem.split("'")[1] if problem.count("'") >= 2 else "this character"
        return at, f"a value cannot start with {char!r}", "put the value in quotes"
    if "could not find expected ':'" in problem and opened is not None:
        return opened, "this line is neither `key: value` nor a list item `- ...`", \
            "add ': ' after the key, or check the indentation"
    if "expected <block end>" in problem:
        where = f" (the block begins at line {opened.line + 1})" if opened is not None else ""
        return at, f"the indentation does not match the lines above{where}", \
            "keys of one mapping, and the '-' of one list, line up in one column"
    if "mapping values are not allowed here" in problem:
        return at, "a ':' where a value was expected", "quote the value if it contains ': '"
    if "undefined alias" in problem:
        return at, f"the alias {problem.split(chr(39))[1]!r} has no anchor (&name) before it", \
            "define the anchor first, or write the value out"
    if "another document" in problem:
        return at, "a second YAML document ('---'); a config is one document", "remove the second '---' part"
    where = f" ({context} at line {opened.line + 1})" if context and opened is not None and opened is not at else ""
    return at, f"{problem or context}{where}", "check indentation and quoting"


_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _compose(text: str) -> Any:
    """The node tree. libyaml (C) is the fast path, for a file it reads without error and with
    nesting well inside MAX_DEPTH (its events are counted first: its composer's recursion is in
    C, unbounded); anything else is composed again by PyYAML's own parser (_Loader), whose
    errors and depth check the messages are built on. Every start reads the config and every
    recipe: ~40 ms of a `validate` in pure Python."""
    if getattr(yaml, "__with_libyaml__", False):
        try:
            depth = 0
            for event in yaml.parse(text, Loader=yaml.CSafeLoader):
                if isinstance(event, _OPEN):
                    depth += 1
                    if depth >= MAX_DEPTH:
                        break
                elif isinstance(event, _CLOSE):
                    depth -= 1
            else:
                return yaml.compose(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=_Loader)


def load_located(text: str, filename: str) -> Located:
    """Parse YAML text into Located values, or raise ConfigError with a position."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise ConfigError([Problem(filename, 1, 1, "", f"file is larger than {MAX_BYTES // 1024} KiB",
                                   "is this the right file?")])
    odd = _ODD_BREAK.search(text)
    if odd is not None:
        # YAML counts these as line breaks, editors mostly do not: positions would disagree
        line, col = _position(text, odd.start())
        name = {"\x85": "NEL (U+0085)", "\u2028": "LINE SEPARATOR (U+2028)",
                "\u2029": "PARAGRAPH SEPARATOR (U+2029)"}[odd.group()]
        raise ConfigError([Problem(filename, line, col, "", f"a {name} line break is not allowed",
                                   "use a plain newline (it was probably pasted from a web page or a word processor)")])
    try:
        node = _compose(text)
    except _TooDeep as exc:
        raise ConfigError([Problem(filename, exc.mark.line + 1, exc.mark.column + 1, "",
                                   f"nested deeper than {MAX_DEPTH} levels", "a config needs a few levels only")]) from None
    except yaml.MarkedYAMLError as exc:
        mark, msg, hint = describe_yaml_error(exc)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(filename, line, col, "", f"YAML syntax: {msg}", hint)]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "a byte"
        raise ConfigError([Problem(filename, line, col, "", f"a control character ({what}) is not allowed",
                                   "remove it; is this a text file?")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(filename, 1, 1, "", f"YAML: {exc}")]) from None
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _CORE + "null"):
        what = "has only comments" if text.strip() else "is empty"
        raise ConfigError([Problem(filename, 1, 1, "", f"the file {what}: there is nothing to set up", HOW_TO_START)])
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


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


# ----------------------------------------------------------------- file -----
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_config_file(path: Path) -> str:
    """The config's text, refusing at once what is not a regular file (a FIFO would block
    forever, a device could stream without end) and anything over MAX_BYTES, before reading."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise UsageError(f"{path}: no such file", "give the path of your config, e.g. homelab plan config.yaml") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    _check_kind(path, st)
    try:
        # O_NONBLOCK: should the path become a FIFO after the check, open does not hang
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        _check_kind(path, os.fstat(fd))  # the file we opened, not the one we looked at
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        _too_big(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None


def _check_kind(path: Path, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path}: is a directory, not a config file",
                         f"give the YAML file's path, e.g. {path / 'config.yaml'}")
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise UsageError(f"{path}: is {kind}, not a regular file",
                             "homelab reads its config from a file: save it first, e.g. > config.yaml")
    if st.st_size > MAX_BYTES:
        _too_big(path)


def _too_big(path: Path) -> None:
    raise UsageError(f"{path}: larger than {MAX_BYTES // 1024} KiB, too big for a config", "is this the right file?")
