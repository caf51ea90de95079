"""The whole config: one section per layer, parsed and validated in one pass.

Which sections exist, in which order, and who parses them comes from the layer registry
(`homelab/registry.py`). A section for a layer that is not built yet is refused with "not
supported yet" (never silently ignored). After parsing, every layer's claims are collected
(pure) and checked against each other: two layers claiming one port is a config error that
points at both places.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from homelab import registry
from homelab.claims import Claim, Claims, find_conflicts
from homelab.config.compute import ComputeConfig, Machine
from homelab.config.privilege import PrivilegeConfig
from homelab.config.reader import Problems, Section
from homelab.config.yamlpos import Located, load_located, locate, read_config_file
from homelab.errors import ConfigError, Problem

CONFIG_VERSION = 1


@dataclass(frozen=True)
class Config:
    path: Path
    version: int = CONFIG_VERSION
    sections: Mapping[str, Any] = field(default_factory=dict)
    claims: Claims = field(default_factory=Claims)
    digest: str = ""  # sha256 of the file's text: a saved plan is for exactly this config

    def get(self, name: str) -> Any:
        return self.sections.get(name)

    @property
    def privilege(self) -> PrivilegeConfig:
        return self.sections.get("privilege") or PrivilegeConfig()

    @property
    def compute(self) -> ComputeConfig:
        return self.sections.get("compute") or ComputeConfig()

    @property
    def machines(self) -> tuple[Machine, ...]:
        return self.compute.machines

    @property
    def host_names(self) -> tuple[str, ...]:
        """Every machine and cloud server the config names, in config order."""
        servers = getattr(self.compute.hetzner, "servers", ()) or ()
        return tuple(dict.fromkeys([*(m.name for m in self.machines), *(s.name for s in servers)]))

    @property
    def state_path(self) -> Path:
        """State lives beside the config: config.yaml -> config.state.json."""
        return self.path.with_name(self.path.stem + ".state.json")


def parse_config(text: str, path: Path) -> Config:
    """Parse and validate; raises ConfigError listing every problem found."""
    problems = Problems(str(path))
    root: Located = load_located(text, str(path))
    top = Section(root, "", problems)
    version = top.integer("version", CONFIG_VERSION, lo=1, hi=CONFIG_VERSION)
    sections: dict[str, Any] = {}
    entries = registry.entries()
    for entry in registry.by_number(entries):
        node = top.raw(entry.id)
        if node is None or node.value is None:
            continue
        parse = registry.parser_of(entry) if entry.built else None
        if parse is None:
            top.fail(node, entry.id, f"layer {entry.number} ({entry.id}) is not supported yet",
                     "remove this section; it will be read once the layer exists", key=True)
            continue
        sections[entry.id] = parse(Section(node, entry.id, problems))
    top.done(["version", *(e.id for e in entries)])
    if problems.items:
        raise ConfigError(problems.items)
    cfg = Config(path=path, version=version or CONFIG_VERSION, sections=sections)
    _check_cross_references(cfg, root, problems)
    if problems.items:
        raise ConfigError(problems.items)
    claims = collect_claims(cfg)
    for conflict in find_conflicts(claims):
        problems.add(locate(root, conflict.path), conflict.path, conflict.message, conflict.hint)
    if problems.items:
        raise ConfigError(problems.items)
    return Config(path=path, version=cfg.version, sections=sections, claims=Claims(tuple(claims)),
                  digest=hashlib.sha256(text.encode()).hexdigest())


def collect_claims(cfg: Config) -> list[Claim]:
    """Every built layer's claims, in run order, then those derived from them (pure)."""
    out: list[Claim] = []
    for entry in registry.built():
        section = cfg.sections.get(entry.id)
        if entry.claims and section is not None:
            out.extend(registry.resolve(entry.claims)(section, cfg))
    first = Claims(tuple(out))
    for entry in registry.built():
        section = cfg.sections.get(entry.id)
        if entry.derived_claims and section is not None:
            out.extend(registry.resolve(entry.derived_claims)(section, cfg, first))
    return out


def _check_cross_references(cfg: Config, root: Located, problems: Problems) -> None:
    """Checks that need more than one section (kept here so sections stay independent)."""
    for entry in registry.entries():
        parsed = cfg.sections.get(entry.id)
        check = getattr(parsed, "cross_check", None)
        if check is not None:
            check(cfg, root, problems)


def load_config(path: str | Path, *, needs_hosts: bool = False) -> Config:
    """`needs_hosts`: for the commands that set things up (validate, plan, apply, status), a
    config naming no machine and no Hetzner project, with no layer that works without hosts,
    is an error: valid YAML, but nothing to do."""
    p = Path(path)
    cfg = parse_config(read_config_file(p), p)
    if needs_hosts and not cfg.host_names and cfg.compute.hetzner is None and all(
            entry.on_hosts or entry.serves_others for entry in map(registry.find, cfg.sections) if entry):
        raise ConfigError([Problem(str(p), 1, 1, "", "the config names no machine and no cloud server: "
                                   "there is nothing to set up",
                                   "add your machines under compute.machines (config.example.yaml shows how), "
                                   "or run `homelab` on a terminal: its wizard writes a config")])
    return cfg
