"""Step for layer 6 (apps): pick apps from the recipe catalog and place each on one or more machines.

The recipe field is a pick list of the shipped catalog (name — description, memory), so a
person browses what exists while choosing; variables keep their recipe defaults (set them in
config.yaml afterwards: the file documents each one). The machines are typed ("pi-1, pi-2") or
picked from the machines step's (the ▾ beside them: space ticks, enter takes them); several
write `machines: [a, b]`, which the parser takes only for a stateless recipe. Validation is the
real parser's, as everywhere in the wizard.
"""
from __future__ import annotations

from functools import lru_cache

from homelab.tui.wizard.fields import Field, ListField
from homelab.tui.wizard.step import WizardStep
from homelab.tui.wizard.steps.compute import machine_choices


@lru_cache(maxsize=1)
def recipe_choices() -> tuple[tuple[str, str], ...]:
    from homelab.config.recipe_catalog import list_recipes

    try:
        recipes = list_recipes()
    except Exception:  # a broken shipped catalog must not stop the wizard; validation will say why
        return ()
    return tuple((f"{r.name} — {r.description[:40]} ({r.memory_mb} MB)", r.name) for r in recipes)


APPS = ListField(
    "list", "Apps (from the recipe catalog) and the machines each runs on",
    (
        Field("name", "name", placeholder="calendar", width=12),
        Field("recipe", "recipe", kind="choice", default="radicale", load_choices=recipe_choices, width=36),
        # one machine: `machine: a`; several (a stateless app, load-balanced): `machines: [a, b]`
        Field("machine", "machines (▾ picks)", kind="names", placeholder="pi-1", width=16, plural="machines",
              pick_from=machine_choices, pick_title="Pick the machines (one, or several for a copy on each)"),
    ),
    comment="Apps homelab runs; each recipe's variables keep their defaults unless set here.",
    add_label="add an app",
)


class AppsStep(WizardStep):
    section = "apps"
    title = "apps"
    intro = ("Self-hosted apps from recipes: Docker compose (Debian 13 hosts) or a Debian package as a "
             "hardened service. Each is health-gated and rolls back by itself; its data stays under "
             "/srv/homelab/<name>.")
    comment = "the apps (layer 6)"
    fields = (APPS,)


STEP = AppsStep()
