"""The whole config: one section per layer, parsed and validated in one pass.

Sections follow the layers, bottom to top. A section for a layer that is not built yet is
refused with "not supported yet" (never silently ignored). Adding a layer's config is one
parser function plus one line in SECTIONS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from homelab.config.compute import ComputeConfig, Machine, parse_compute
from homelab.config.privilege import PrivilegeConfig, parse_privilege
from homelab.config.reader import Problems, Section
from homelab.config.yamlpos import Located, load_located
from homelab.errors import ConfigError, UsageError

CONFIG_VERSION = 1


@dataclass(frozen=True)
class SectionSpec:
    layer: int
    parser: Callable[[Section], Any] | None  # None: the layer is not built yet


def _compute(sec: Section) -> ComputeConfig:
    return parse_compute(sec, COMPUTE_EXTRAS)


# Sub-sections of compute contributed by other modules (e.g. "hetzner": parse_hetzner).
COMPUTE_EXTRAS: dict[str, Callable[[Section, dict[str, str]], Any]] = {}

SECTIONS: dict[str, SectionSpec] = {
    "billing": SectionSpec(-1, None),
    "privilege": SectionSpec(0, parse_privilege),
    "mesh": SectionSpec(1, None),
    "permissions": SectionSpec(2, None),
    "compute": SectionSpec(3, _compute),
    "storage": SectionSpec(4, None),
    "ingress": SectionSpec(5, None),
    "apps": SectionSpec(6, None),
    "links": SectionSpec(7, None),
}


def _register_optional_sections() -> None:
    """Modules for later layers register their parsers here (kept import-light: pure code)."""
    import importlib

    for modname in ("homelab.config.billing", "homelab.config.mesh", "homelab.config.permissions",
                    "homelab.config.hetzner"):
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        mod.register(SECTIONS, COMPUTE_EXTRAS)


_register_optional_sections()


@dataclass(frozen=True)
class Config:
    path: Path
    version: int = CONFIG_VERSION
    sections: Mapping[str, Any] = field(default_factory=dict)

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
    for name, spec in SECTIONS.items():
        node = top.raw(name)
        if node is None or node.value is None:
            continue
        if spec.parser is None:
            top.fail(node, name, f"layer {spec.layer} ({name}) is not supported yet",
                     "remove this section; it will be read once the layer exists", key=True)
            continue
        sections[name] = spec.parser(Section(node, name, problems))
    top.done(["version", *SECTIONS])
    if problems.items:
        raise ConfigError(problems.items)
    cfg = Config(path=path, version=version or CONFIG_VERSION, sections=sections)
    _check_cross_references(cfg, root, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return cfg


def _check_cross_references(cfg: Config, root: Located, problems: Problems) -> None:
    """Checks that need more than one section (kept here so sections stay independent)."""
    for name in SECTIONS:
        parsed = cfg.sections.get(name)
        check = getattr(parsed, "cross_check", None)
        if check is not None:
            check(cfg, root, problems)


def load_config(path: str | Path) -> Config:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{p}: no such file", "give the path of your config, e.g. homelab plan config.yaml") from None
    except OSError as exc:
        raise UsageError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{p}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    return parse_config(text, p)
