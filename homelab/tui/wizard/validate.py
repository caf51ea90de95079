"""Validate wizard answers with the real config parser (no rules of our own).

The candidate document is the text `render_config` would write; `parse_config` judges it
and the problems about one step's section are that step's. Messages and hints are the
parser's own, so the wizard says exactly what `homelab validate` would say.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from homelab.config.schema import Config, parse_config
from homelab.errors import ConfigError, Problem
from homelab.tui.wizard.fields import Answers
from homelab.tui.wizard.render import render_config
from homelab.tui.wizard.step import WizardStep

CANDIDATE = Path("config.yaml")  # the name problems are reported against (never written)


def check_config(answers: Mapping[str, Answers], steps: Sequence[WizardStep],
                 path: Path = CANDIDATE) -> tuple[Config | None, list[Problem]]:
    """(parsed config, []) when valid, else (None, every problem)."""
    try:
        return parse_config(render_config(answers, steps), path), []
    except ConfigError as exc:
        return None, list(exc.problems)


def step_problems(answers: Mapping[str, Answers], steps: Sequence[WizardStep], step: WizardStep) -> list[Problem]:
    """Problems of `step`, judged on the document of every step so far (cross-checks included)."""
    upto = list(steps[:steps.index(step) + 1]) if step in steps else [*steps, step]
    _, problems = check_config(answers, upto)
    return [p for p in problems if step.owns(p)]


def describe(problem: Problem) -> str:
    """A problem as `homelab validate` prints it, minus the candidate's file:line:col."""
    path = f"{problem.path}: " if problem.path else ""
    hint = f" (hint: {problem.hint})" if problem.hint else ""
    return f"{path}{problem.message}{hint}"
