"""The form of one wizard step, built from the step's fields (no step-specific widget code).

Each value change updates `answers` (the text exactly as typed) and posts `StepForm.Edited`;
the wizard screen validates through the config parser and hands the problems back with
`show_problems`, which marks the inputs concerned. A problem shows once its field was
touched, or for every field after the person tried to go on (`reveal`).
"""
from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from homelab.errors import Problem
from homelab.tui.widgets.tick_box import TickBox
from homelab.tui.wizard.fields import Answers, Field, ListField, blank_item, item_is_blank
from homelab.tui.wizard.step import WizardStep, field_paths

_NUMERIC = {"int": "integer", "number": "number"}


def _control(f: Field, value: Any, *, compact_label: bool = False) -> Widget:
    """The widget for one field, its value set from the answers."""
    if f.kind == "bool":
        return TickBox(f.label, bool(value), compact=True)
    if f.kind == "choice":
        options = list(f.options())
        known = {v for _, v in options}
        return Select(options, value=value if value in known else options[0][1], allow_blank=False,
                      compact=True)
    return Input(str(value), placeholder=f.placeholder or (f.label if compact_label else ""), compact=True)


def _pick_button(f: Field) -> Button:
    """The ▾ beside a field whose names can be picked from another step's."""
    pick = Button("▾", classes="pick-names", compact=True,
                  tooltip=f"pick the {'name' if f.pick_one else 'names'} (enter)")
    pick.pick_key = f.key  # type: ignore[attr-defined]
    return pick


class ItemRow(Horizontal):
    """One item of a list field: a control per item field and a remove button."""

    def __init__(self, field: ListField, values: Answers) -> None:
        super().__init__(classes="item-row")
        self.field = field
        self.values: dict[str, Any] = {f.key: values.get(f.key, f.default) for f in field.item_fields}

    def compose(self) -> ComposeResult:
        for f in self.field.item_fields:
            w = _control(f, self.values[f.key], compact_label=True)
            w.styles.width = f.width
            w.tooltip = f.label
            w.answer_key = f.key  # type: ignore[attr-defined]
            w.add_class("item-control")
            yield w
            if f.pick_from is not None:
                yield _pick_button(f)
        yield Button("✕", classes="remove-row", compact=True, tooltip="remove this row")

    def control(self, key: str) -> Input:
        return next(w for w in self.query(Input) if getattr(w, "answer_key", None) == key)


class StepForm(VerticalScroll):
    """All questions of one step."""

    class Edited(Message):
        """The answers of `form` changed (typed, ticked, picked, row added or removed)."""

        def __init__(self, form: StepForm) -> None:
            super().__init__()
            self.form = form

    class PickRequested(Message):
        """The ▾ of a field with names to pick was pressed: the screen (which knows every step's
        answers) offers the names to pick and writes the choice into `target`."""

        def __init__(self, form: StepForm, field: Field, target: Input) -> None:
            super().__init__()
            self.form, self.field, self.target = form, field, target

    def __init__(self, step: WizardStep, answers: Answers, id: str | None = None) -> None:
        super().__init__(id=id, classes="step-form")
        self.step = step
        self.fields = step.visible_fields()
        self.answers: dict[str, Any] = {**step.defaults(), **dict(answers)}
        self.touched: set[str] = set()
        self.revealed = False

    # ------------------------------------------------------------- compose --
    def compose(self) -> ComposeResult:
        yield Static(self.step.intro, classes="step-intro")
        for f in self.fields:
            if isinstance(f, ListField):
                yield from self._compose_list(f)
            else:
                yield from self._compose_field(f)
        actions = [a for a in self.step.actions if a.available()]
        if actions:
            with Horizontal(classes="step-actions"):
                for a in actions:
                    yield Button(f"+ {a.label}", id=f"action-{a.id}", classes="step-action", compact=True)

    def _compose_field(self, f: Field) -> ComposeResult:
        w = _control(f, self.answers.get(f.key, f.default))
        w.answer_key = f.key  # type: ignore[attr-defined]
        w.id = f"field-{_dom_id(f.key)}"
        if f.kind == "bool":
            yield w
            return
        with Horizontal(classes="field-row"):
            suffix = f" ({_NUMERIC[f.kind]})" if f.kind in _NUMERIC else ""
            yield Label(f.label + suffix, classes="field-label")
            yield w
            if f.pick_from is not None:
                yield _pick_button(f)

    def _compose_list(self, f: ListField) -> ComposeResult:
        yield Label(f.label, classes="list-label")
        with Horizontal(classes="list-head"):
            for sub in f.item_fields:
                head = Label(sub.label, classes="list-col")
                # a column with names to pick has its ▾ (3 columns and a margin) beside the input
                head.styles.width = sub.width + (4 if sub.pick_from else 0)
                yield head
        with Vertical(id=f"list-{_dom_id(f.key)}", classes="list-rows"):
            for item in self.answers.get(f.key, ()):
                yield ItemRow(f, item)
        yield Button(f"+ {f.add_label}", id=f"add-{_dom_id(f.key)}", classes="add-row", compact=True)

    # ------------------------------------------------------------- editing --
    def _list_field(self, key: str) -> ListField:
        return next(f for f in self.fields if isinstance(f, ListField) and f.key == key)

    def _rows(self, f: ListField) -> list[ItemRow]:
        return list(self.query_one(f"#list-{_dom_id(f.key)}", Vertical).query(ItemRow))

    def _sync_list(self, f: ListField) -> None:
        self.answers[f.key] = tuple(dict(r.values) for r in self._rows(f))

    def _edited(self) -> None:
        self.post_message(self.Edited(self))

    def _value_changed(self, widget: Widget, value: Any) -> None:
        key = getattr(widget, "answer_key", None)
        if key is None:
            return
        row = next((a for a in widget.ancestors if isinstance(a, ItemRow)), None)
        current = row.values.get(key) if row is not None else self.answers.get(key)
        if current == value:
            return  # widgets announce their initial value too: not an edit
        if row is not None:
            row.values[key] = value
            self._sync_list(row.field)
            self.touched.update(self._row_paths(row, key))
        else:
            self.answers[key] = value
            f = next(f for f in self.fields if f.key == key)
            self.touched.update(field_paths(self.step.section, f))
        self._edited()

    @on(Input.Changed)
    def _input(self, event: Input.Changed) -> None:
        event.stop()
        self._value_changed(event.input, event.value)

    @on(Checkbox.Changed)
    def _checkbox(self, event: Checkbox.Changed) -> None:
        event.stop()
        self._value_changed(event.checkbox, event.value)

    @on(Select.Changed)
    def _select(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL:
            self._value_changed(event.select, event.value)

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()  # enter in a field moves on, like a paper form
        self.app.action_focus_next()

    @on(Button.Pressed, ".add-row")
    async def _add_row(self, event: Button.Pressed) -> None:
        event.stop()
        key = next(f.key for f in self.fields if isinstance(f, ListField)
                   and event.button.id == f"add-{_dom_id(f.key)}")
        f = self._list_field(key)
        row = ItemRow(f, blank_item(f))
        await self.query_one(f"#list-{_dom_id(f.key)}", Vertical).mount(row)
        self._sync_list(f)
        row.query(".item-control").first().focus()
        self._edited()

    @on(Button.Pressed, ".pick-names")
    def _pick(self, event: Button.Pressed) -> None:
        event.stop()
        key = getattr(event.button, "pick_key")
        row = next((a for a in event.button.ancestors if isinstance(a, ItemRow)), None)
        if row is None:
            field = next(f for f in self.fields if isinstance(f, Field) and f.key == key)
            target = self.query_one(f"#field-{_dom_id(key)}", Input)
        else:
            field = next(f for f in row.field.item_fields if f.key == key)
            target = row.control(key)
        self.post_message(self.PickRequested(self, field, target))

    @on(Button.Pressed, ".remove-row")
    async def _remove_row(self, event: Button.Pressed) -> None:
        event.stop()
        row = next(a for a in event.button.ancestors if isinstance(a, ItemRow))
        await row.remove()
        self._sync_list(row.field)
        self._edited()

    @on(Button.Pressed, ".step-action")
    async def _action(self, event: Button.Pressed) -> None:
        event.stop()
        action = next(a for a in self.step.actions if event.button.id == f"action-{a.id}")
        self.answers = dict(action.run(self.answers))
        for f in self.fields:
            if isinstance(f, ListField):
                box = self.query_one(f"#list-{_dom_id(f.key)}", Vertical)
                await box.remove_children()
                await box.mount_all([ItemRow(f, item) for item in self.answers.get(f.key, ())])
            else:  # the widget shows the new answer (its Changed then matches: no second edit)
                widget = self.query_one(f"#field-{_dom_id(f.key)}")
                widget.value = self.answers.get(f.key, f.default)  # type: ignore[attr-defined]
        self._edited()

    # ------------------------------------------------------------ problems --
    def _row_paths(self, row: ItemRow, key: str | None = None) -> tuple[str, ...]:
        """The parser's paths of a row's field: rows nobody typed in are not written, so skip them."""
        f = row.field
        written = [r for r in self._rows(f) if not item_is_blank(f, r.values)]
        index = written.index(row) if row in written else len(written)
        sub = next((s for s in f.item_fields if s.key == key), None) if key else None
        return field_paths(self.step.section, f, index, sub)

    def reveal(self) -> None:
        """Show every problem, touched or not (the person tried to go on)."""
        self.revealed = True

    def shown(self, problems: list[Problem]) -> list[Problem]:
        if self.revealed:
            return problems
        return [p for p in problems if any(_about(p.path, t) for t in self.touched)]

    def show_problems(self, problems: list[Problem]) -> None:
        """Mark the controls a shown problem is about (the words are in the problem list)."""
        shown = self.shown(problems)
        for w in self.query(".item-control, Input, Select, Checkbox"):
            key = getattr(w, "answer_key", None)
            if key is None:
                continue
            row = next((a for a in w.ancestors if isinstance(a, ItemRow)), None)
            if row is not None:
                paths = self._row_paths(row, key)
            else:
                paths = field_paths(self.step.section, next(f for f in self.fields if f.key == key))
            w.set_class(any(_about(p.path, path) for p in shown for path in paths), "-problem")


def _about(problem_path: str, field: str) -> bool:
    """Whether a problem at `problem_path` is about the field at `field` (or inside it)."""
    return problem_path == field or problem_path.startswith((f"{field}.", f"{field}["))


def _dom_id(key: str) -> str:
    return key.replace(".", "-").replace("_", "-")
