"""A checkbox whose state is a character, not only a colour: [X] ticked, [ ] not."""
from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        inner = "X" if self.value else " "
        return Content.assemble("[", (inner, self.get_visual_style("toggle--button")), "]")
