"""A config for lab hosts, and `homelab lab demo`: lab up 3, write lab.yaml, apply it.

The main job on a built-in default: what a person runs first to see homelab work, without
any machine of their own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


def render_lab_config(inventory: Mapping[str, Any], hosts: Sequence[str] | None = None,
                      names: Mapping[str, str] | None = None, user: str = "admin",
                      timezone: str = "Europe/Berlin") -> str:
    """Pure: a commented homelab config adopting the given lab hosts (default: all)."""
    rows = [h for h in inventory["hosts"] if hosts is None or h["name"] in hosts]
    names = names or {}
    lines = [
        "# homelab config for machines of the local lab (`homelab lab up`).",
        "# Written by `homelab lab`; edit freely. Documented keys: config.example.yaml.",
        "version: 1",
        "privilege:",
        "  # the lab's generated operator key",
        f"  ssh_key: {inventory['ssh_key']}",
        "compute:",
        "  base:",
        f"    timezone: {timezone}",
        "  machines:",
    ]
    for h in rows:
        lines.append(f"    - name: {names.get(h['name'], h['name'])}")
        lines.append(f"      address: {h['address']}")
        lines.append(f"      user: {user}")
    return "\n".join(lines) + "\n"


def write_lab_config(path: Path, inventory: Mapping[str, Any], **kwargs: Any) -> Path:
    path.write_text(render_lab_config(inventory, **kwargs))
    return path
