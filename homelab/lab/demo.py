"""A config for lab hosts, and `homelab lab demo`: lab up 3, write lab.yaml, apply it.

The main job on a built-in default: what a person runs first to see homelab work, without
any machine of their own — every built layer: the WireGuard mesh, an operator user with
hardened sshd and the firewall, and apps from the shipped recipes (radicale, miniflux on
PostgreSQL, Radicale from Debian's package), their images from the lab registry.
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


DEMO_LAYERS = """\
billing:
  # no cloud servers here: the bill is 0, and a budget shows where it would stop a plan
  budget: 20
mesh:
  nodes:
{mesh_nodes}
permissions:
  users:
    - name: ops
      sudo: true
  revert_after: 30
storage:
  # every app's data is backed up (restic) over the mesh to rest-server on {last}, append-only
  repositories:
    - {{name: backup, type: rest, machine: {last}}}
  # the repository password stays yours: here a file beside lab.yaml (0600), read by a command
  password: {{command: "cat {password_file}"}}
ingress:
  # Caddy on {first} serves every app at https://<app>.lab with certificates of its own CA
  # (`homelab ca export lab.yaml` gives the root to trust); Anubis guards the feed reader
  machines: [{first}]
  domain: lab
  tls: {{mode: internal}}
  anubis: {{mirror: "labrepo:5000"}}
  apps:
    - {{name: feeds, anubis: true}}
apps:
  # the lab serves lab builds of the recipes' upstream images (and nothing is pulled from the internet)
  images: {{mirror: "labrepo:5000"}}
  list:
    - {{name: cal, recipe: radicale, machine: {first}, variables: {{auth_type: none}}}}
    - {{name: feeds-db, recipe: postgres, machine: {first}, variables: {{database: feeds, user: feeds}}}}
    - {{name: feeds, recipe: miniflux, machine: {first}, requires: {{db: feeds-db}}, variables: {{base_url: "http://feeds.lab/"}}}}
{service_app}"""


def render_demo_config(inventory: Mapping[str, Any], password_file: str = "lab.restic-password") -> str:
    """Pure: the lab config plus every built layer, for `homelab lab demo`."""
    names = [h["name"] for h in inventory["hosts"] if h.get("suite", "trixie") == "trixie"] or \
        [h["name"] for h in inventory["hosts"]]
    nodes = "\n".join(f"    - {{name: {n}, endpoint: auto}}" for n in [h["name"] for h in inventory["hosts"]])
    # the service kind listens on loopback (its recipe's command line): next to ingress, on the first
    service = f"    - {{name: dav, recipe: radicale-service, machine: {names[0]}, variables: {{auth_type: none}}}}\n"
    last = inventory["hosts"][-1]["name"]
    return render_lab_config(inventory) + DEMO_LAYERS.format(mesh_nodes=nodes, first=names[0], service_app=service,
                                                             last=last, password_file=password_file)
