"""What a wizard step is: one config section, its questions, and how its answers are written.

A step module under `steps/` subclasses `WizardStep`, lists its fields and, when the section
is more than flat keys, overrides `entries`. The layer registry names each built layer's step
(`homelab/registry.py`), so a layer that is not built yet has no step and the wizard never
writes a section validation would refuse.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from homelab import registry
from homelab.errors import Problem
from homelab.tui.wizard.fields import AnyField, Answers, Field, ListField, default_answers, item_is_blank, split_names
from homelab.tui.wizard.yaml_text import Entry, Items, flow_list, scalar


@dataclass(frozen=True)
class StepAction:
    """An extra button of a step (e.g. "add the lab's machines"): answers in, answers out."""

    id: str
    label: str
    run: Callable[[Answers], Answers]
    available: Callable[[], bool] = lambda: True


class WizardStep:
    section: ClassVar[str]  # config section == layer name
    title: ClassVar[str]  # short, for the step bar: "budget"
    intro: ClassVar[str]  # one or two sentences at the top of the step
    comment: ClassVar[str] = ""  # written above the section in config.yaml
    fields: ClassVar[tuple[AnyField, ...]] = ()
    actions: ClassVar[tuple[StepAction, ...]] = ()

    @property
    def layer(self) -> int:
        return registry.number_of(self.section)

    def visible_fields(self) -> tuple[AnyField, ...]:
        """Fields shown now (a step may hide parts whose sub-parser is not built)."""
        return self.fields

    def defaults(self) -> dict[str, Any]:
        return default_answers(self.visible_fields())

    # ----------------------------------------------------------- rendering --
    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        """The section's keys as YAML entries; empty answers are left out (parser defaults)."""
        out: list[Entry] = []
        for f in self.visible_fields():
            if isinstance(f, Field) and f.wizard_only:
                continue
            out.extend(field_entries(f, answers.get(f.key)))
        return nest(out)

    def render(self, answers: Answers) -> tuple[Entry, ...]:
        """The whole section (nothing when no key is set: the parser's defaults apply)."""
        body = self.entries(answers)
        if not body:
            return ()
        return (Entry(self.section, body, f"Layer {self.layer} — {self.section}: {self.comment}"
                      if self.comment else f"Layer {self.layer} — {self.section}"),)

    # ---------------------------------------------------------- problems ----
    def extra_problems(self, answers: Answers) -> list[str]:
        """Refusals beyond the parser's (only for what the parser cannot know, like a pasted token)."""
        return []

    def owns(self, problem: Problem) -> bool:
        """Whether a parser problem is about this step's section."""
        p = problem.path
        return p == self.section or p.startswith((f"{self.section}.", f"{self.section}["))


def field_entries(f: AnyField, value: Any) -> list[Entry]:
    if isinstance(f, ListField):
        items = tuple(item_entries(f, item) for item in (value or ()) if not item_is_blank(f, item))
        return [Entry(f.key, Items(items), f.comment)] if items else []
    if f.kind == "bool":
        # written even when it is the default: a generated config should say what it chose
        return [Entry(f.key, scalar("bool", f.default if value is None else value), f.comment)]
    if f.kind == "names":
        return [e for e in (names_entry(f, value, f.comment),) if e is not None]
    text = "" if value is None else str(value)
    if not text.strip():
        return []
    return [Entry(f.key, scalar(f.kind, text), f.comment)]


def item_entries(f: ListField, item: Answers) -> tuple[Entry, ...]:
    """One list item; comments only on the first item would need its index, so none here."""
    out: list[Entry] = []
    for sub in f.item_fields:
        value = item.get(sub.key, sub.default)
        if sub.kind == "bool":
            out.append(Entry(sub.key, scalar("bool", value)))
        elif sub.kind == "names":
            out.extend(e for e in (names_entry(sub, value),) if e is not None)
        elif str(value).strip():
            text = scalar(sub.kind, str(value))
            out.append(Entry(sub.path or sub.key, f"[{text}]" if sub.one_item_list else text))
    return tuple(out)


def names_entry(f: Field, value: object, comment: str = "") -> Entry | None:
    """`machine: a` for one name, `machines: [a, b]` for more (the parser takes either), none
    for none (the parser then says the key is required)."""
    names = split_names(value)
    if not names:
        return None
    if len(names) == 1:
        return Entry(f.key, scalar("text", names[0]), comment)
    return Entry(f.plural or f.key, flow_list(names), comment)


def nest(entries: list[Entry]) -> tuple[Entry, ...]:
    """Dotted keys ("hetzner.servers") become nested mappings, in first-seen order."""
    out: list[Entry] = []
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        head, dot, rest = e.key.partition(".")
        if not dot:
            out.append(e)
            continue
        if head not in groups:
            groups[head] = []
            out.append(Entry(head, ()))  # placeholder, filled below
        groups[head].append(Entry(rest, e.value, e.comment))
    return tuple(Entry(e.key, nest(groups[e.key]), e.comment) if e.key in groups and e.value == () else e
                 for e in out)


def field_path(section: str, f: AnyField, index: int | None = None, sub: Field | None = None) -> str:
    """The dotted path the parser uses for a field (to put its problems next to it)."""
    return field_paths(section, f, index, sub)[0]


def field_paths(section: str, f: AnyField, index: int | None = None, sub: Field | None = None) -> tuple[str, ...]:
    """Every path the parser may report a field's problems under: a "names" field is `machine`
    for one name and `machines` (`machines[1]`) for more."""
    keys = f.keys() if isinstance(f, Field) else (f.key,)
    if index is None:
        return tuple(f"{section}.{k}" for k in keys)
    base = f"{section}.{keys[0]}[{index}]"
    return tuple(f"{base}.{k}" for k in sub.keys()) if sub is not None else (base,)
