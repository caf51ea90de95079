"""Filling a recipe's `${...}` references for one app (pure).

The recipe parser has already checked every reference (`recipe.REF`), so here a reference
that cannot be filled is a bug, raised as KeyError. Where the text goes decides how each
part is written, so a `Scope` carries three small rules:

- `literal`: how plain text (and a variable's value) is escaped for the target — compose
  writes `$` as `$$`, a systemd unit `%` as `%%`, an argv nothing;
- `secret`: what stands for a secret — never its value: compose gets `${HOMELAB_SECRET_X:?...}`,
  interpolated by compose on the host from the app's env file;
- `dep`: values a required app provides, already written for the same target.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from homelab.config.recipe import REF

Value = str | int | bool


def _same(text: str) -> str:
    return text


def show(value: Value) -> str:
    """A variable's value as text: booleans are true/false (as the recipe README says)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Scope:
    var: Mapping[str, Value]
    app: Mapping[str, str]  # name, data, host
    secret: Callable[[str], str]
    dep: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # alias -> key -> written value
    literal: Callable[[str], str] = _same


def fill(template: str, scope: Scope) -> str:
    """`template` with every reference replaced; `$$` is a literal `$` (then escaped by `literal`)."""
    out: list[str] = []
    pos = 0
    for m in REF.finditer(template):
        out.append(scope.literal(template[pos:m.start()]))
        pos = m.end()
        if m.group(0) == "$$":
            out.append(scope.literal("$"))
            continue
        if m.group(1) is None:
            raise KeyError(f"a lone '$' in {template!r}")
        kind, _, rest = m.group(1).partition(".")
        if kind == "var":
            out.append(scope.literal(show(scope.var[rest])))
        elif kind == "app":
            out.append(scope.literal(scope.app[rest]))
        elif kind == "secret":
            out.append(scope.secret(rest))
        elif kind == "dep":
            alias, _, key = rest.partition(".")
            out.append(scope.dep[alias][key])
        else:
            raise KeyError(f"unknown reference ${{{m.group(1)}}}")
    out.append(scope.literal(template[pos:]))
    return "".join(out)


def secret_names(template: str) -> list[str]:
    """The secrets a template refers to, in order."""
    return [m.group(1)[len("secret."):] for m in REF.finditer(template) if (m.group(1) or "").startswith("secret.")]
