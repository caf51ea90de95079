"""`render_config(answers) -> str`: the commented config.yaml the wizard writes (pure).

The same text is what the wizard validates while you type (see `validate`), so what you
were told was valid is byte for byte what lands in the file, and `homelab validate`,
`plan` and `apply` read it exactly as the TUI did.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from homelab.config.schema import CONFIG_VERSION
from homelab.tui.wizard.fields import Answers
from homelab.tui.wizard.step import WizardStep
from homelab.tui.wizard.yaml_text import Entry, emit

HEADER = """\
# homelab config — written by the homelab wizard; edit freely.
# `homelab validate config.yaml` checks it; `homelab plan config.yaml`
# shows what apply would do. Sections follow the layers, bottom to top.
# Secrets are never written here: they come from an environment variable
# ({env: NAME}) or a command ({command: "pass show x"}).
# Every key is documented in config.example.yaml.
"""


def render_config(answers: Mapping[str, Answers], steps: Sequence[WizardStep] | None = None) -> str:
    """config.yaml text for the answers of each step (keyed by section), steps in layer order."""
    if steps is None:
        from homelab.tui.wizard.steps import active_steps

        steps = active_steps()
    entries: list[Entry] = [Entry("version", str(CONFIG_VERSION), "Config format version (only 1 exists).")]
    for step in sorted(steps, key=lambda s: s.layer):
        entries.extend(step.render(answers.get(step.section, step.defaults())))
    lines = [HEADER.rstrip("\n"), ""]
    for i, line in enumerate(emit(entries)):
        # a blank line before each top-level section keeps the file readable
        if i and line.startswith("# Layer "):
            lines.append("")
        lines.append(line)
    return "\n".join(lines) + "\n"
