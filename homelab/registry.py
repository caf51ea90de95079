"""The layers, each declared once: the single list everything else derives from.

Run order, `--layer` names and help, the config sections the parser reads, plan/status order,
the wizard's steps, the dashboard's panes, destroy and the test catalogs all read `LAYERS`.
Adding a layer is its own package plus one entry here.

Entries name their code as "module:attribute" strings, imported on first use: the config
parser stays import-light (no pyinfra, hcloud or Textual to validate a file), the headless
path never imports the wizard, and there are no import cycles through this module (it
imports nothing of homelab's at module level). A name that does not import is an error, never
a silent skip.

Order of the tuple = run order. It differs from the layer numbers in one place, on purpose:
compute (3) runs right after privilege (0), because the mesh (1) and permissions (2)
configure machines that compute must first create; walking 1 and 2 before their hosts exist
would need a second apply to converge. Everything a person reads shows layers by number.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class LayerEntry:
    id: str  # config section, state section, `--layer` name
    number: int  # the model's: -1 billing ... 7 integration
    title: str
    summary: str  # one line for `--layer` help and the wizard
    parse: str | None = None  # "module:function(Section) -> section value"; None: not built yet
    layer: str | None = None  # "module:Class" of the Layer
    step: str | None = None  # "module:NAME" of the wizard step
    claims: str | None = None  # "module:function(section, Config) -> Iterable[Claim]" (pure)
    # claims that follow from other layers' claims (storage: restic where apps back up), run once
    # every layer's own are in: "module:function(section, Config, Claims) -> Iterable[Claim]" (pure)
    derived_claims: str | None = None
    commands: tuple[tuple[str, str], ...] = ()  # extra CLI commands: (name, "module:COMMAND")
    on_hosts: bool = True  # works on hosts (probes, ops) rather than only an API / the local machine
    # only serves the other layers (prices their servers, holds their keys): a config of such
    # sections alone, naming no machine, sets nothing up
    serves_others: bool = False
    destroy: str = "leaves its work in place"  # what `homelab destroy` does to it

    @property
    def built(self) -> bool:
        return self.parse is not None and self.layer is not None


LAYERS: tuple[LayerEntry, ...] = (
    LayerEntry("billing", -1, "billing", "monthly cost of the config, budget",
               parse="homelab.config.billing:parse_billing", layer="homelab.layers.billing:BillingLayer",
               step="homelab.tui.wizard.steps.billing:STEP", on_hosts=False, serves_others=True,
               destroy="nothing to remove"),
    LayerEntry("privilege", 0, "privilege", "operator SSH key, cloud API token, host keys",
               parse="homelab.config.privilege:parse_privilege", layer="homelab.layers.privilege:PrivilegeLayer",
               step="homelab.tui.wizard.steps.privilege:STEP", on_hosts=False, serves_others=True,
               destroy="keeps the operator key (yours) and pinned host keys"),
    LayerEntry("compute", 3, "compute", "machines adopted over SSH, Hetzner Cloud servers",
               parse="homelab.config.compute:parse_compute", layer="homelab.layers.compute:ComputeLayer",
               step="homelab.tui.wizard.steps.compute:STEP",
               destroy="deletes the cloud servers homelab created (--confirm-delete); adopted machines stay"),
    LayerEntry("mesh", 1, "cluster network (WireGuard)", "WireGuard mesh between all nodes",
               parse="homelab.config.mesh:parse_mesh", layer="homelab.layers.mesh:MeshLayer",
               step="homelab.tui.wizard.steps.mesh:STEP", claims="homelab.config.mesh:mesh_claims",
               commands=(("mesh", "homelab.layers.mesh.cli:COMMAND"),),
               destroy="leaves wg0 on adopted machines (gone with deleted servers)"),
    LayerEntry("permissions", 2, "permissions", "operator users, sudo, hardened sshd, firewall",
               parse="homelab.config.permissions:parse_permissions",
               layer="homelab.layers.permissions:PermissionsLayer",
               step="homelab.tui.wizard.steps.permissions:STEP",
               claims="homelab.config.permissions:permissions_claims",
               destroy="leaves users, sshd and firewall in place (never locks you out on the way out)"),
    LayerEntry("storage", 4, "storage", "data placement, restic backups, restore drills",
               parse="homelab.config.storage:parse_storage", layer="homelab.layers.storage:StorageLayer",
               step="homelab.tui.wizard.steps.storage:STEP", claims="homelab.config.storage:storage_claims",
               derived_claims="homelab.config.storage:storage_derived_claims",
               commands=(("backup", "homelab.layers.storage.cli:COMMAND"),),
               destroy="leaves data, repositories and backups in place (they outlive homelab)"),
    LayerEntry("ingress", 5, "application network", "Caddy ingress, TLS, DNS, Anubis",
               parse="homelab.config.ingress:parse_ingress", layer="homelab.layers.ingress:IngressLayer",
               step="homelab.tui.wizard.steps.ingress:STEP", claims="homelab.config.ingress:ingress_claims",
               derived_claims="homelab.config.ingress:ingress_derived_claims",
               commands=(("ca", "homelab.layers.ingress.cli:COMMAND"),),
               destroy="leaves Caddy, its sites and DNS records in place"),
    LayerEntry("apps", 6, "applications", "Docker compose apps and services from recipes",
               parse="homelab.config.apps:parse_apps", layer="homelab.layers.apps:AppsLayer",
               step="homelab.tui.wizard.steps.apps:STEP", claims="homelab.config.apps:apps_claims",
               commands=(("apps", "homelab.layers.apps.cli:COMMAND"),),
               destroy="leaves apps running on adopted machines (gone with deleted servers); data is never deleted"),
    LayerEntry("links", 7, "integration", "apps wired to each other, alerts"),
)


def entries() -> tuple[LayerEntry, ...]:
    """Every layer, built or not, in run order."""
    return LAYERS


def built() -> tuple[LayerEntry, ...]:
    return tuple(e for e in LAYERS if e.built)


def by_number(items: tuple[LayerEntry, ...] | None = None) -> tuple[LayerEntry, ...]:
    """Display order: what a person reads is ordered by layer number."""
    return tuple(sorted(LAYERS if items is None else items, key=lambda e: e.number))


def find(layer_id: str) -> LayerEntry | None:
    return next((e for e in LAYERS if e.id == layer_id), None)


def number_of(layer_id: str) -> int:
    entry = find(layer_id)
    return entry.number if entry is not None else 99


def layer_help() -> str:
    """`--layer` help: the built layers, by number."""
    return ", ".join(f"{e.id} ({e.number})" for e in by_number(built()))


def resolve(ref: str) -> Any:
    """Import "module:attribute". Raises ImportError/AttributeError naming the entry (a typo in the
    registry must fail loudly, not drop a layer)."""
    module, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise type(exc)(f"layer registry: cannot load {ref!r}: {exc}") from exc


def parser_of(entry: LayerEntry) -> Callable[..., Any] | None:
    return resolve(entry.parse) if entry.parse else None
