"""The new-config wizard: one step per built layer, bottom to top, then write config.yaml.

Every step stays mounted (a ContentSwitcher shows one), so going back shows everything as
it was typed. Validation is the config parser's: after each edit the screen renders the
document so far and shows the parser's problems, worded as `homelab validate` words them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import Button, ContentSwitcher, Footer, Input, Label, Static

from homelab.errors import Problem
from homelab.tui.keys import back
from homelab.tui.widgets.problem_list import ProblemList
from homelab.tui.widgets.step_form import StepForm
from homelab.tui.wizard.fields import Answers
from homelab.tui.wizard.step import WizardStep

WRITE = "write"


class WriteForm(VerticalScroll):
    """The last step: where to write, and the exact text that will be written."""

    def __init__(self, path: Path) -> None:
        super().__init__(id=f"step-{WRITE}", classes="step-form")
        self.path = path

    def compose(self) -> ComposeResult:
        yield Static("Check the config below, then write it. `homelab plan` / `apply` read exactly this file.",
                     classes="step-intro")
        with Horizontal(classes="field-row"):
            yield Label("Write to", classes="field-label")
            yield Input(str(self.path), id="write-path", compact=True)
        yield Button("write config and review the plan", id="write", compact=True, action="screen.write")
        yield Static("", id="preview")

    def show(self, text: str) -> None:
        self.query_one("#preview", Static).update(Text(text))


class StepBar(Static):
    """"-1 budget › 0 access › … › write", the current step in brackets (not colour alone)."""

    def show(self, steps: Sequence[WizardStep], current: int, flagged: set[str]) -> None:
        text = Text()
        names = [(f"{s.layer} {s.title}", s.section) for s in steps] + [("write", WRITE)]
        width = self.size.width or 80
        if sum(len(n) + 3 for n, _ in names) + 2 > width:
            # too many steps for one line (80 columns): the others by number only, "-1 › 0 › [1 mesh] › 2"
            names = [(n if i == current or s == WRITE else n.split(" ", 1)[0], s) for i, (n, s) in enumerate(names)]
        for i, (name, section) in enumerate(names):
            if i:
                text.append(" › ", style="dim")
            mark = "!" if section in flagged else ""
            if i == current:
                text.append(f"[{name}{mark}]", style="bold reverse")
            else:
                text.append(f"{name}{mark}", style="dim" if i > current else "")
        self.update(text)


class WizardScreen(Screen[None]):
    """Questions per layer; ends by writing a commented config.yaml."""

    BINDINGS = [
        Binding("ctrl+n", "next", "next step", priority=True),
        Binding("ctrl+p", "back", "previous step", priority=True),
        back(description="previous step"),  # q is a letter here: ctrl+q quits
        Binding("f1", "app.help", "help"),
    ]

    class Finished(Message):
        """The config was written to `path` (the app goes on to the plan)."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, steps: Sequence[WizardStep], path: Path) -> None:
        super().__init__()
        self.steps = list(steps)
        self.path = path
        self.answers: dict[str, Answers] = {s.section: s.defaults() for s in self.steps}
        self.index = 0
        self._insisted = -1  # step where next was pressed once despite problems
        self.problems: dict[str, list[Problem]] = {}
        self._forms_mounted: AwaitMount | None = None

    # -------------------------------------------------------------- layout --
    def compose(self) -> ComposeResult:
        yield Static("homelab — new config", id="title")
        yield StepBar(id="stepbar")
        with ContentSwitcher(initial=self._step_id(0), id="steps"):
            yield self._form(0)  # the other steps are built after the first paint (_mount_forms)
        yield ProblemList(id="problems")
        with Horizontal(id="nav"):
            yield Button("← back (ctrl+p)", id="back", compact=True, action="screen.back")
            yield Static("", id="nav-spacer")
            yield Button("next (ctrl+n) →", id="next", compact=True, action="screen.next")
        yield Footer()

    def _form(self, index: int) -> Widget:
        if index >= len(self.steps):
            return WriteForm(self.path)
        step = self.steps[index]
        return StepForm(step, self.answers[step.section], id=f"step-{step.section}")

    def on_mount(self) -> None:
        self._place_focus()
        # validation (the config parser) and the other steps wait for the first frame: the
        # first step shows no problem before something is typed or next is pressed anyway.
        # "After refresh" is after the first layout, and the frame's write to the terminal is
        # queued behind it (Textual batches start-up): call_later puts the forms behind that
        # write, or a person waits ~0.15 s more for the first screen (tests/tui/test_first_paint.py)
        self.call_after_refresh(self.call_later, self._mount_forms)

    async def _mount_forms(self) -> None:
        """The steps not composed yet (all but the first), hidden; then the first validation."""
        if self._forms_mounted is None:
            rest = [self._form(i) for i in range(1, len(self.steps) + 1)]
            for form in rest:
                form.display = False  # ContentSwitcher shows only the current one
            self._forms_mounted = self.query_one(ContentSwitcher).mount_all(rest)
            await self._forms_mounted
            self._refresh()
        else:
            await self._forms_mounted

    def _step_id(self, index: int) -> str:
        return f"step-{self.steps[index].section}" if index < len(self.steps) else f"step-{WRITE}"

    @property
    def on_write_step(self) -> bool:
        return self.index >= len(self.steps)

    def form(self, index: int | None = None) -> StepForm:
        return self.query_one(f"#{self._step_id(self.index if index is None else index)}", StepForm)

    # ---------------------------------------------------------- validation --
    def _validate(self) -> list[str]:
        """Problems now shown for the current step (also marks its fields)."""
        from homelab.tui.wizard.validate import check_config, describe  # the config parser: after the first paint

        if self.on_write_step:
            _, problems = check_config(self.answers, self.steps)
            extra = [x for s in self.steps for x in s.extra_problems(self.answers[s.section])]
            self.problems = {s.section: [p for p in problems if s.owns(p)] for s in self.steps}
            return [describe(p) for p in problems] + extra
        step = self.steps[self.index]
        _, problems = check_config(self.answers, self.steps[: self.index + 1])
        form = self.form()
        form.show_problems([p for p in problems if step.owns(p)])
        for s in self.steps[: self.index + 1]:  # earlier steps' flags follow what was typed here
            self.problems[s.section] = [p for p in problems if s.owns(p)]
        # earlier steps' problems caused by what is typed here (mesh nodes need machines)
        # show as "!" in the step bar and in full on the write step, not here
        return [describe(p) for p in form.shown(self.problems[step.section])] + \
            step.extra_problems(self.answers[step.section])

    def _refresh(self) -> list[str]:
        lines = self._validate()
        flagged = {s for s, ps in self.problems.items() if ps}
        self.query_one(StepBar).show(self.steps, self.index, flagged)
        note = ""
        if self.on_write_step:
            from homelab.tui.wizard.render import render_config

            self.query_one(WriteForm).show(render_config(self.answers, self.steps))
            if lines:
                note = "Go back (ctrl+p) to the step named in a problem to fix it."
        self.query_one(ProblemList).show(lines, note)
        return lines

    def _show_step(self) -> None:
        self.query_one(ContentSwitcher).current = self._step_id(self.index)
        self._refresh()
        self._place_focus()

    def _place_focus(self) -> None:
        self.query_one("#back", Button).disabled = self.index == 0
        self.query_one("#next", Button).display = not self.on_write_step
        target = self.query_one(f"#{self._step_id(self.index)}")
        focusable = [w for w in target.query("Input, Select, Checkbox, Button") if w.focusable]
        if focusable:
            focusable[0].focus()

    @on(StepForm.Edited)
    def _edited(self, event: StepForm.Edited) -> None:
        self.answers[event.form.step.section] = dict(event.form.answers)
        self._refresh()

    @on(StepForm.PickRequested)
    def _pick(self, event: StepForm.PickRequested) -> None:
        """Offer the names another step gave (a field's machines: the machines step's), one only
        where the field holds one; the choice is written into the field as if typed, so
        validation and going back work as for typing."""
        from homelab.tui.screens.pick_names import PickNamesScreen, PickOneScreen
        from homelab.tui.wizard.fields import join_names, split_names

        field, target = event.field, event.target
        assert field.pick_from is not None

        def take(names: tuple[str, ...] | None) -> None:
            if names is not None:  # the focus goes back to the ▾ by itself
                target.value = join_names(names)  # Input.Changed: the form records it as typed

        screen = PickOneScreen if field.pick_one else PickNamesScreen
        self.app.push_screen(screen(field.pick_title, field.pick_from(self.answers), split_names(target.value)), take)

    # ---------------------------------------------------------- navigation --
    async def action_next(self) -> None:
        """On to the next step; with problems, only when asked twice.

        Layers are asked bottom to top, but a lower layer may name things of a higher one
        (mesh nodes are compute machines, asked two steps later): such a problem is real
        now and gone later, so it must not lock the person in. The config is written only
        when no problem is left.
        """
        if self.on_write_step:
            return
        await self._mount_forms()  # pressed before they were all built
        form = self.form()
        was_revealed = form.revealed
        form.reveal()
        problems = self._refresh()
        if problems and not (was_revealed and self._insisted == self.index):
            self._insisted = self.index
            self.notify(f"{len(problems)} problem(s) on this step. Fix them, or press next again to go on "
                        "(the config is written only when none is left).", severity="warning", timeout=4)
            return
        self._insisted = -1
        self.index += 1
        self._show_step()

    async def action_back(self) -> None:
        await self._mount_forms()
        if self.index > 0:
            self.index -= 1
            self._show_step()

    def action_write(self) -> None:
        self.write_config()

    def write_config(self) -> Path | None:
        """Write the config if everything is valid and the file is new; None (and say why) if not."""
        if self._refresh():
            self.notify("The config has problems; see below.", severity="error", timeout=4)
            return None
        raw = self.query_one("#write-path", Input).value.strip()
        path = Path(os.path.expanduser(raw or "config.yaml"))
        if path.exists():
            self.notify(f"{path} exists already; the wizard only writes new files. Pick another name.",
                        severity="error", timeout=6)
            return None
        from homelab.tui.wizard.render import render_config

        text = render_config(self.answers, self.steps)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as fh:  # "x": never overwrite a file made meanwhile
                fh.write(text)
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror}", severity="error", timeout=6)
            return None
        self.post_message(self.Finished(path))
        return path
