"""The recipe catalog: finds recipes by name in the directories a config names, then the shipped ones.

A recipe `NAME` is the file `NAME.yaml` in the first directory that has it, so a person's own
directory overrides a shipped recipe of the same name. Reading files is the only I/O here;
parsing is `recipe.parse_recipe`.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from homelab.config.reader import NAME
from homelab.config.recipe import Recipe, parse_recipe
from homelab.errors import ConfigError, HomelabError, Problem, UsageError
from homelab.recipes_dir import shipped_recipes_dir


class UnknownRecipe(UsageError):
    """No directory of the catalog has a recipe of that name."""

    def __init__(self, name: str, known: list[str]) -> None:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "`homelab` lists the catalog; add your own with recipes.dirs"
        super().__init__(f"no recipe {name!r}", hint)
        self.name = name


@dataclass(frozen=True)
class RecipeSummary:
    """One line of the wizard's catalog."""

    name: str
    description: str
    memory_mb: int
    kind: str
    file: Path


def shipped_dir() -> Path | None:
    """The recipes that ship with homelab (checkout, wheel or executable), None if lost."""
    try:
        return shipped_recipes_dir()
    except HomelabError:
        return None


class Catalog:
    """Recipes from `dirs` in order (the config's own directories first), then the shipped ones."""

    def __init__(self, extra_dirs: Iterable[Path] = (), include_shipped: bool = True) -> None:
        dirs = [Path(d).expanduser() for d in extra_dirs]
        shipped = shipped_dir() if include_shipped else None
        self.dirs = dirs + ([shipped] if shipped is not None else [])

    def names(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.dirs:
            if d.is_dir():
                for f in sorted(d.glob("*.yaml")):
                    if NAME.match(f.stem):
                        seen.setdefault(f.stem, None)
        return sorted(seen)

    def path(self, name: str) -> Path:
        if NAME.match(name):  # a name is never a path: no '../' tricks
            for d in self.dirs:
                f = d / f"{name}.yaml"
                if f.is_file():
                    return f
        raise UnknownRecipe(name, self.names())

    def load(self, name: str) -> Recipe:
        """The parsed recipe, its requirements checked against the recipes they name."""
        recipe = self._parse(name)
        problems = self._check_requires(recipe)
        if problems:
            raise ConfigError(problems)
        return recipe

    def summaries(self) -> list[RecipeSummary]:
        """Every recipe that parses; broken ones are left out here and reported by `load`."""
        out = []
        for name in self.names():
            try:
                r = self._parse(name)
            except ConfigError:
                continue
            out.append(RecipeSummary(r.name, r.description, r.memory_mb, r.kind, Path(r.file)))
        return out

    def _parse(self, name: str) -> Recipe:
        f = self.path(name)
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"read recipe {f}: {exc}", "check the file's permissions and encoding") from exc
        return parse_recipe(text, f, expect_name=name)

    def _check_requires(self, recipe: Recipe) -> list[Problem]:
        """Each required recipe exists and provides every `${dep.ALIAS.KEY}` this one uses."""
        problems: list[Problem] = []
        for req in recipe.requires:
            try:
                provider = self._parse(req.recipe)
            except UnknownRecipe as exc:
                problems.append(Problem(recipe.file, *req.at, "requires", exc.message, exc.hint))
                continue
            except ConfigError as exc:
                problems.append(Problem(recipe.file, *req.at, "requires",
                                        f"recipe {req.recipe!r} is broken: {exc.message}", exc.hint))
                continue
            offered = [k for k, _ in provider.provides]
            for key, line, col in req.key_at:
                if key not in offered:
                    close = difflib.get_close_matches(key, offered, n=1, cutoff=0.6)
                    problems.append(Problem(
                        recipe.file, line, col, "requires", f"recipe {req.recipe!r} provides no {key!r}",
                        f"did you mean '{close[0]}'?" if close else f"it provides: {', '.join(offered) or 'nothing'}"))
        return problems


def load_recipe(name: str, extra_dirs: Iterable[Path] = ()) -> Recipe:
    return Catalog(extra_dirs).load(name)


def list_recipes(extra_dirs: Iterable[Path] = ()) -> list[RecipeSummary]:
    return Catalog(extra_dirs).summaries()
