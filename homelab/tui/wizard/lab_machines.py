"""Machines of a running `homelab lab`, to adopt them in the wizard with one key press.

Reads the lab's inventory.json — through the `homelab.lab` API when it is importable, else
from its well-known path /var/lib/homelab-lab/<instance>/inventory.json. Nothing here
starts or changes a lab.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAB_ROOT = Path("/var/lib/homelab-lab")


@dataclass(frozen=True)
class LabMachine:
    name: str
    address: str
    user: str  # "admin" when the lab made one (sudo user), else root
    key: str  # the lab's private key path
    port: int = 22


def lab_instance() -> str:
    return os.environ.get("HOMELAB_LAB_INSTANCE", "0")


def inventory_path(instance: str | None = None) -> Path:
    return LAB_ROOT / (instance or lab_instance()) / "inventory.json"


def _inventory_from_api() -> dict[str, Any] | None:
    """The lab's own view (HOMELAB_LAB_INSTANCE / HOMELAB_LAB_DIR), when the lab package is there."""
    try:
        from homelab.lab import LabConfig
    except ImportError:
        return None
    try:
        if not (LabConfig.from_env().dir / "inventory.json").exists():
            return None  # no lab up: the manager (a third of the wizard's start-up) is not imported
        from homelab.lab import Lab

        inv = Lab().inventory()
    except Exception:  # a half-torn-down lab is not an error here: there is simply nothing to pick
        return None
    return inv if isinstance(inv, dict) else None


def parse_inventory(doc: dict[str, Any]) -> list[LabMachine]:
    key = str(doc.get("ssh_key", ""))
    out = []
    for h in doc.get("hosts", []) or []:
        if not isinstance(h, dict) or not h.get("name") or not h.get("address"):
            continue
        users = h.get("users") or ["root"]
        out.append(LabMachine(str(h["name"]), str(h["address"]), "admin" if "admin" in users else "root",
                              str(h.get("ssh_key", key)), int(h.get("port", 22))))
    return out


def read_inventory(instance: str | None = None) -> dict[str, Any] | None:
    doc = _inventory_from_api() if instance is None else None
    if doc is None:
        try:
            doc = json.loads(inventory_path(instance).read_text())
        except (OSError, ValueError):
            return None
    return doc if isinstance(doc, dict) else None


def read_lab_machines(instance: str | None = None) -> list[LabMachine]:
    """The running lab's machines; [] when no lab runs."""
    doc = read_inventory(instance)
    return parse_inventory(doc) if doc else []


def lab_key() -> str | None:
    """The running lab's operator key (its machines accept it for root and admin)."""
    doc = read_inventory()
    return str(doc["ssh_key"]) if doc and doc.get("ssh_key") else None
