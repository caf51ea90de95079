"""Commented YAML text from typed answers (pure).

PyYAML's dumper drops comments, and a config a person will edit later needs them, so the
wizard writes YAML text itself from a small tree of entries. Values are written the way a
person would type them in the file: a number field holds a plain number when the text is
one and a quoted string when not — so the parser reports exactly what `homelab validate`
reports for the same hand-written file ("should be an integer 1-65535, not a string").
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Union

_PLAIN = re.compile(r"^[A-Za-z0-9_./~+@-][A-Za-z0-9_./~+@:-]*$")
_INT = re.compile(r"^[+-]?[0-9]+$")
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


def text_scalar(text: str) -> str:
    """A string as YAML: plain when it reads back as the same string, else double-quoted."""
    if _PLAIN.match(text) and not text.endswith(":"):
        import yaml  # here, not at the top: the wizard's first frame needs no YAML (start-up)

        try:
            if yaml.safe_load(text) == text:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML double-quoted scalar


def int_scalar(text: str) -> str:
    t = text.strip()
    return t if _INT.match(t) else text_scalar(text)


def number_scalar(text: str) -> str:
    t = text.strip()
    return t if _NUMBER.match(t) else text_scalar(text)


def bool_scalar(value: bool) -> str:
    return "true" if value else "false"


def flow_list(texts: tuple[str, ...] | list[str]) -> str:
    """Strings as a one-line YAML list: `[pi-1, "a b"]`."""
    return "[" + ", ".join(text_scalar(t) for t in texts) + "]"


def scalar(kind: str, value: object) -> str:
    if kind == "bool":
        return bool_scalar(bool(value))
    text = str(value)
    if kind == "int":
        return int_scalar(text)
    if kind == "number":
        return number_scalar(text)
    return text_scalar(text)


@dataclass(frozen=True)
class Entry:
    """`key: value` with an optional comment line above it.

    value: a rendered scalar (str), a nested mapping (tuple of Entry) or a list of
    mappings (Items).
    """

    key: str
    value: Union[str, tuple["Entry", ...], "Items"]
    comment: str = ""


@dataclass(frozen=True)
class Items:
    items: tuple[tuple[Entry, ...], ...]


def emit(entries: tuple[Entry, ...] | list[Entry], indent: int = 0) -> list[str]:
    """YAML lines for a mapping, block style, two-space indents, comments kept."""
    pad = " " * indent
    lines: list[str] = []
    for e in entries:
        if e.comment:
            lines.extend(f"{pad}# {c}" for c in e.comment.splitlines())
        if isinstance(e.value, str):
            lines.append(f"{pad}{e.key}: {e.value}")
        elif isinstance(e.value, Items):
            lines.append(f"{pad}{e.key}:")
            for item in e.value.items:
                lines.extend(_emit_item(item, indent + 2))
        else:
            lines.append(f"{pad}{e.key}:")
            lines.extend(emit(e.value, indent + 2))
    return lines


def _emit_item(item: tuple[Entry, ...], indent: int) -> list[str]:
    """`- key: v` with the rest aligned under the first key (comments as in config.example.yaml)."""
    body = emit(item, indent + 2)
    if not body:
        return [" " * indent + "- {}"]
    first = body[0][indent + 2:]
    return [" " * indent + "- " + first, *body[1:]]
