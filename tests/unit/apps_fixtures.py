"""Parsing an `apps:` section from text, for the apps tests (the layer's registry entry is the lead's)."""
from __future__ import annotations

from pathlib import Path

from homelab.config.apps import AppsConfig, parse_apps
from homelab.config.reader import Problems, Section
from homelab.config.yamlpos import load_located
from homelab.errors import ConfigError


class Hosts:
    """The part of a Config that cross_check reads."""

    def __init__(self, *names: str) -> None:
        self.host_names = names


def parse(text: str, file: Path, hosts: tuple[str, ...] = ("pi-1", "pi-2")) -> AppsConfig:
    """Parse and cross-check; raise ConfigError with every problem."""
    problems = Problems(str(file))
    root = load_located(text, str(file))
    apps = parse_apps(Section(root.value["apps"], "apps", problems))
    if not problems.items:
        apps.cross_check(Hosts(*hosts), root, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return apps
