"""Shared test data for the permissions layer: real keys, configs, host views.

`converged()` builds the HostView of a host on which a plan was fully applied, from the same
renderers the diff uses, so "apply, then plan again" can be asserted without a host.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from homelab.claims import Claims
from homelab.config import parse_config
from homelab.config.permissions import PermissionsConfig
from homelab.layers.permissions.firewall import firewall_spec, render_nft_ruleset
from homelab.provision.guard import FIREWALL_UNIT_TEXT, GUARD_SCRIPT, GUARD_UNIT_TEXT, sha256
from homelab.layers.permissions.plan import (
    UPGRADES_TEXT, HostInputs, render_keys_file, render_sudoers, wanted_keys,
)
from homelab.layers.permissions.probes import Account, FileState, HostView
from homelab.layers.permissions.sshd import KEYS_DIR, render_sshd_dropin

# real keys (ssh-keygen), used nowhere but in these tests
ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP9LduR/sQDFa4uYW5Roo5D+kcuMDNcEOd0fGHLccEa2 alice@laptop"
BOB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcHrZw7lmtxIif0Xb+S4raR/alGxWKdW7UfVx0A4Jkd bob@desk"
OPERATOR = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL+GaX9IcqaC5QAWa0yxIa0yMB59DAyefSfsQDMkUilY homelab-operator"
RSA_1024 = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDXTpB0bAGkQsSNzomiWxXxnbgMe0IRLygMHEF4RrIQr0npWo2vD0yi"
            "SWo4w4LjJT0T14pVbMh38Tt2TImeKRpnV+30NSqEV3ZpMYlaGiTR0tTR347JbQaDh916JktmdWYSaATKGfJSTuZOLH59fhY"
            "hQLRK/lYLsr1+ifSUcPSF5w== small")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJWGOutOW49ejBTQBKqQtdBxIxttenMy9Gt4ebevbsHh"

BASE = f"""\
compute:
  machines:
    - {{name: web-1, address: 10.0.0.11, user: admin}}
    - {{name: pi-1, address: 192.168.1.20}}
permissions:
  users:
    - name: alice
      keys: ["{ALICE}"]
      sudo: true
    - name: bob
      keys: ["{BOB}"]
  firewall:
    ingress_hosts: [web-1]
    allow:
      - {{port: 9100, from: 10.100.0.0/24}}
"""


def config(text: str = BASE) -> Any:
    return parse_config(text, Path("/tmp/perm/c.yaml"))


def perms(text: str = BASE) -> PermissionsConfig:
    return config(text).get("permissions")


def inputs(**kw: Any) -> HostInputs:
    base: dict[str, Any] = dict(host="web-1", address="10.0.0.11", port=22, user="admin",
                                key_path="/home/me/.ssh/id_ed25519", use_agent=False, host_key=HOST_KEY,
                                operator_key=OPERATOR, managed=(), claims=config().claims)
    base.update(kw)
    return HostInputs(**base)


def fresh_view(openssh: tuple[int, int] = (10, 0), users: tuple[str, ...] = ("alice", "bob", "root")) -> HostView:
    """A Debian host homelab never touched: sshd on 22, nothing of ours, tools there."""
    return HostView(
        reachable=True, openssh=openssh, tools=frozenset({"visudo", "systemd-run", "sshd", "flock"}),
        effective={"port": ["22"], "permitrootlogin": ["without-password"], "passwordauthentication": ["yes"],
                   "kbdinteractiveauthentication": ["no"], "authorizedkeysfile": [".ssh/authorized_keys"]},
        accounts={u: Account(u, u == "root", "/bin/bash" if u == "root" else "") for u in users},
        today=20000,
        upgrades={"package": "un", "conf": "", "timer": "enabled active", "dltimer": "enabled active"},
    )


def file(text: str) -> FileState:
    return FileState(True, sha256(text), text.rstrip("\n"))


def converged(cfg: PermissionsConfig, inp: HostInputs, view: HostView) -> HostView:
    """`view` after everything the plan asks for was applied."""
    openssh = view.openssh or (10, 0)
    accounts = dict(view.accounts)
    keys: dict[str, FileState] = {}
    sudoers: dict[str, str] = {}
    for user in cfg.users:
        accounts[user.name] = Account(user.name, True, "/bin/bash")
        keys[user.name] = file(render_keys_file(user.name, wanted_keys(user, cfg, inp.operator_key)))
        if user.sudo:
            sudoers[user.name] = sha256(render_sudoers(user.name))
    for name in set(inp.managed) - {u.name for u in cfg.users}:
        if name in accounts and accounts[name].exists:
            accounts[name] = Account(name, True, "/usr/sbin/nologin", 1)
    effective = {"port": [str(cfg.sshd.port)], "permitrootlogin": ["no"], "passwordauthentication": ["no"],
                 "kbdinteractiveauthentication": ["no"], "authorizedkeysfile": [f"{KEYS_DIR}/%u"]}
    nft = render_nft_ruleset(firewall_spec(inp.host, (cfg.sshd.port,), inp.claims))
    return dataclasses.replace(
        view, tools=view.tools | {"nft", "visudo"}, effective=effective, accounts=accounts, keys=keys, sudoers=sudoers,
        sshd_file=file(render_sshd_dropin(cfg.sshd, openssh)),
        nft_file=file(nft) if cfg.firewall.enabled else FileState(False),
        nft_loaded=cfg.firewall.enabled, nft_policy="drop" if cfg.firewall.enabled else "",
        nft_same=cfg.firewall.enabled,
        guard={"script": sha256(GUARD_SCRIPT), "unit": sha256(GUARD_UNIT_TEXT), "enabled": "enabled",
               "fwunit": sha256(FIREWALL_UNIT_TEXT), "fwenabled": "enabled"},
        upgrades={"package": "ii", "conf": sha256(UPGRADES_TEXT), "timer": "enabled active",
                  "dltimer": "enabled active"},
    )


MESH = """\
mesh:
  nodes:
    - {name: web-1, endpoint: auto}
    - {name: pi-1}
"""


def mesh_claims() -> Claims:
    """The BASE config with a mesh: web-1 takes inbound peers, pi-1 is behind NAT."""
    return config(BASE + MESH).claims
