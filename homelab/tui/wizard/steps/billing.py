"""Step for layer -1 (billing): what the cloud part may cost per month."""
from __future__ import annotations

from homelab.tui.wizard.fields import Answers, Field
from homelab.tui.wizard.step import WizardStep
from homelab.tui.wizard.yaml_text import Entry


class BillingStep(WizardStep):
    section = "billing"
    title = "budget"
    intro = ("What may the cloud servers cost per month? A plan over budget is refused before anything "
             "is bought. Leave it empty to only see the cost.")
    comment = "what the cloud part may cost per month"
    fields = (
        Field("budget", "Monthly budget", kind="number", placeholder="e.g. 20",
              comment="Most the Hetzner servers may cost per month; a plan over it fails."),
        Field("currency", "Currency", kind="choice", default="EUR", choices=(("EUR", "EUR"), ("USD", "USD")),
              comment="The currency Hetzner bills the project in."),
    )

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        if not str(answers.get("budget", "")).strip():
            return ()  # no budget: the section would say nothing (plan shows the cost anyway)
        return super().entries(answers)


STEP = BillingStep()
