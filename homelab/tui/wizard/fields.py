"""The questions a wizard step asks, as data, and the answers as typed.

Answers keep exactly what was typed (strings), so going back to a step shows the same text,
invalid or not. Turning them into YAML values is the renderer's job (`yaml_text`), and
judging them is the config parser's (`validate`): the wizard has no validation rules of
its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Union

# field key -> str (typed text) | bool (checkbox) | tuple of item dicts (list fields)
Answers = Mapping[str, Any]
Item = Mapping[str, Any]


@dataclass(frozen=True)
class Field:
    """One value: an input box, a checkbox or a pick list."""

    key: str  # config key inside the section (or list item)
    label: str
    kind: str = "text"  # text | int | number | bool | choice | names
    default: str | bool = ""
    placeholder: str = ""
    choices: tuple[tuple[str, str], ...] = ()  # (label shown, value written) for kind "choice"
    comment: str = ""  # written above the key in config.yaml
    width: int = 12  # columns in a list row
    path: str = ""  # config key the parser reports problems under, if not `key`
    one_item_list: bool = False  # written as `key: [value]` (e.g. one SSH key of a user's list)
    wizard_only: bool = False  # a question for the wizard itself, never written
    # choices found only when the field is shown (the recipe catalog: reading it is a tenth of
    # the wizard's start-up, and its step is not the first one painted)
    load_choices: Callable[[], tuple[tuple[str, str], ...]] | None = None
    # kind "names": one or more names typed "a, b" or picked; one is written `key: a`, more
    # `plural: [a, b]`
    plural: str = ""
    # a ▾ beside the input offers `pick_from(all steps' answers)`: (label, name) pairs, the choice
    # written into the input as if typed; `pick_one`: the field holds one name, so the list takes one
    pick_from: Callable[[Mapping[str, Answers]], tuple[tuple[str, str], ...]] | None = None
    pick_one: bool = False
    pick_title: str = ""  # the pick list's first line: what the names are for

    def options(self) -> tuple[tuple[str, str], ...]:
        return self.load_choices() if self.load_choices is not None else self.choices

    def keys(self) -> tuple[str, ...]:
        """The config keys the parser may report this field's problems under."""
        return tuple(k for k in (self.path or self.key, self.plural) if k)


@dataclass(frozen=True)
class ListField:
    """A list of mappings (machines, users, servers): one row of fields per item."""

    key: str  # may be dotted ("hetzner.servers"): nested mappings in the config
    label: str
    item_fields: tuple[Field, ...]
    comment: str = ""
    add_label: str = "add"


AnyField = Union[Field, ListField]


def split_names(text: object) -> tuple[str, ...]:
    """The names of a "names" answer: "pi-1, pi-2" (commas or spaces between) -> ("pi-1", "pi-2")."""
    return tuple(n for n in re.split(r"[\s,]+", str(text or "")) if n)


def join_names(names: tuple[str, ...] | list[str]) -> str:
    """The answer text for picked names, as a person would type it."""
    return ", ".join(names)


def default_answers(fields: tuple[AnyField, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        out[f.key] = () if isinstance(f, ListField) else f.default
    return out


def blank_item(field: ListField) -> dict[str, Any]:
    return {f.key: f.default for f in field.item_fields}


def item_is_blank(field: ListField, item: Item) -> bool:
    """A row with nothing typed beyond its defaults is not written (an empty row is no machine)."""
    for f in field.item_fields:
        if f.kind == "bool":
            continue
        value = str(item.get(f.key, "")).strip()
        if value and value != str(f.default):
            return False
    return True
