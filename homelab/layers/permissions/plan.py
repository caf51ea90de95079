"""The permissions diff for one host (pure): wanted (config, operator key, state) vs HostView.

Order of the changes on a host matters and is the order below; pyinfra runs a host's
operations in order and stops at the first failure:
  packages -> guard -> users (the operator user, with the operator key and sudo, exists
  before root login goes away) -> removed users -> [firewall opens a moved sshd port] ->
  sshd -> firewall -> unattended upgrades.
"""
from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from typing import Any

from homelab.config.permissions import OperatorUser, PermissionsConfig, key_identity
from homelab.layers.permissions.firewall import LIVE_FILE as NFT_LIVE
from homelab.layers.permissions.firewall import TABLE, firewall_spec, render_nft_ruleset
from homelab.layers.permissions.guard import (
    FIREWALL_UNIT, FIREWALL_UNIT_TEXT, GUARD_SCRIPT, GUARD_UNIT_TEXT, NFT_LISTING, guard_install_ops, guarded_ops,
    sha256,
)
from homelab.layers.permissions.probes import SUDOERS_PREFIX, UPGRADES_CONF, FileState, HostView
from homelab.layers.permissions.sshd import (
    DEFAULT_OPENSSH, DROPIN, HOST_KEY_ALGORITHMS, KEYS_DIR, effective_ports, render_sshd_dropin,
)
from homelab.model import Change, Op

LAYER = "permissions"
STAGING = "/var/lib/homelab/staging"
NOLOGIN = "/usr/sbin/nologin"
UPGRADES_TEXT = """\
// Managed by homelab (layer 2, permissions): security updates are installed every day.
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
"""


@dataclass(frozen=True)
class Login:
    """How homelab logs in to a host once this plan is applied (state: login_user)."""

    user: str
    port: int
    key_path: str | None


@dataclass(frozen=True)
class HostInputs:
    """Everything the diff of one host depends on (no I/O left to do)."""

    host: str
    address: str
    port: int  # where homelab reaches sshd now
    user: str  # who homelab is logged in as now
    key_path: str | None  # the operator private key (path only)
    use_agent: bool
    host_key: str  # pinned public host key line ("" if not known yet)
    operator_key: str | None  # public key line of the operator key
    managed: tuple[str, ...] = ()  # users this layer created on the host before (state)
    mesh: Any = None


@dataclass(frozen=True)
class HostPlan:
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    login: Login | None = None  # switch to this login once `switch_after` are applied
    switch_after: tuple[Change, ...] = ()  # the operator user's change and the sshd change, if planned
    removals: tuple[tuple[str, Change], ...] = ()  # (user, change) that removes a user's access
    managed: tuple[str, ...] = ()  # users state should list (removed ones leave once removed)


# ------------------------------------------------------------------ content ---
def wanted_keys(user: OperatorUser, cfg: PermissionsConfig, operator_key: str | None) -> tuple[str, ...]:
    """The configured keys, plus the operator key for the operator user (see config/permissions.py)."""
    keys = list(user.keys)
    op = cfg.operator
    if op is not None and user.name == op.name and operator_key and \
            key_identity(operator_key) not in {key_identity(k) for k in keys}:
        keys.append(operator_key)
    return tuple(keys)


def render_keys_file(user: str, keys: tuple[str, ...]) -> str:
    head = f"# Managed by homelab: the keys that may log in as {user}. Edits are overwritten.\n"
    return head + "".join(k + "\n" for k in keys)


def render_sudoers(user: str) -> str:
    return (f"# Managed by homelab: {user} may run anything as root. No password is asked:\n"
            f"# logins are key-only, so there is no password to ask for.\n"
            f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n")


def key_label(line: str) -> str:
    parts = line.split(maxsplit=2)
    kind = parts[0].replace("ssh-", "").replace("sk-ssh-", "sk-").split("@")[0]
    return f"{kind} {parts[2]}" if len(parts) > 2 else f"{kind} …{parts[1][-8:]}"


def text_diff(old: str, new: str, name: str) -> tuple[str, ...]:
    lines = difflib.unified_diff(old.rstrip("\n").splitlines(), new.rstrip("\n").splitlines(),
                                 f"{name} (now)", f"{name} (wanted)", lineterm="", n=1)
    return tuple(lines)


# ------------------------------------------------------------------ commands --
def create_user_command(name: str) -> str:
    q = shlex.quote(name)
    # a group of the same name may exist already (useradd would refuse to create it)
    return (f"if getent group {q} >/dev/null; then useradd --create-home --shell /bin/bash --gid {q} {q}; "
            f"else useradd --create-home --shell /bin/bash {q}; fi")


def unlock_user_command(name: str) -> str:
    return f"usermod --expiredate '' --shell /bin/bash {shlex.quote(name)}"


def install_sudoers_command(name: str) -> str:
    """visudo checks the staged file first; the rename is atomic, and sudo ignores the temp
    file meanwhile (it skips names containing a dot)."""
    staged = f"{STAGING}/sudoers-{name}"
    tmp = f"/etc/sudoers.d/.homelab-{name}.tmp"
    final = f"{SUDOERS_PREFIX}{name}"
    return " && ".join([f"visudo -cqf {shlex.quote(staged)}", f"cp {shlex.quote(staged)} {shlex.quote(tmp)}",
                        f"chmod 0440 {shlex.quote(tmp)}", f"mv -f {shlex.quote(tmp)} {shlex.quote(final)}"])


def remove_user_commands(name: str, account_exists: bool) -> list[str]:
    q = shlex.quote(name)
    cmds = [f"rm -f {shlex.quote(SUDOERS_PREFIX + name)} {shlex.quote(f'{KEYS_DIR}/{name}')}"]
    if account_exists:
        # an expired account cannot log in at all, key or not (usermod(8)); kill running sessions
        # too (pkill exits 1 when nothing matched, which is fine)
        cmds.append(f"usermod --expiredate 1 --shell {NOLOGIN} {q}")
        cmds.append(f"pkill -KILL -u {q} || [ $? -eq 1 ]")
    return cmds


# ------------------------------------------------------------------ diff ------
def plan_host(cfg: PermissionsConfig, inp: HostInputs, view: HostView) -> HostPlan:
    host = inp.host
    changes: list[Change] = []
    same: list[str] = []
    warnings: list[str] = []
    operator = cfg.operator
    configured = [u.name for u in cfg.users]

    def change(target: str, action: str, summary: str, ops: tuple[Op, ...], detail: tuple[str, ...] = ()) -> Change:
        c = Change(LAYER, host, action, f"{target}: {summary}" if target else summary, ops=ops, host=host,
                   detail=detail)
        changes.append(c)
        return c

    switch_after: list[Change] = []

    # --- how homelab logs in afterwards, and where a new login is tried to confirm changes
    login_user = operator.name if operator is not None else inp.user
    ports_now = effective_ports(dict(view.effective))
    moving = view.reachable and bool(ports_now) and cfg.sshd.port not in ports_now
    confirm_port = inp.port
    sshd_blocked = ""
    if moving:
        if inp.port in ports_now:
            confirm_port = cfg.sshd.port
        else:  # homelab reaches sshd through a forwarded port we cannot move
            sshd_blocked = (f"{host}: sshd would move to port {cfg.sshd.port}, but homelab reaches it on port "
                            f"{inp.port} (forwarded?); sshd left unchanged: change the forwarding and compute's "
                            "port first, or keep permissions.sshd.port")
    if inp.host_key and inp.host_key.split()[0] not in HOST_KEY_ALGORITHMS:
        sshd_blocked = (f"{host}: the pinned host key is {inp.host_key.split()[0]}, but the hardened sshd offers only "
                        f"{', '.join(HOST_KEY_ALGORITHMS)}; sshd left unchanged (re-pin: homelab forget-host, then "
                        "apply with --accept-new-host-keys)")
    if operator is not None and not inp.operator_key:
        sshd_blocked = f"{host}: the operator public key is unknown; sshd left unchanged so homelab keeps its way in"
    if operator is None and inp.user != "root":
        # only the operator user and root get the operator key in the managed key files
        sshd_blocked = (f"{host}: homelab logs in as {inp.user}, which would lose its keys; sshd left unchanged: "
                        f"add {inp.user} to permissions.users with sudo: true")
    if sshd_blocked:
        warnings.append(sshd_blocked)
        confirm_port = inp.port
    # a new login as the user homelab switches to must work; after a revert, any of these may answer
    tried = list(dict.fromkeys([login_user, inp.user]))
    confirm = {"host": host, "address": inp.address, "port": confirm_port, "users": tried, "key_path": inp.key_path,
               "use_agent": inp.use_agent, "host_key": inp.host_key, "fallback_port": inp.port}

    # --- packages the layer's own tools need
    need: list[str] = []
    if operator is not None or any(u.sudo for u in cfg.users):
        if not view.reachable or "visudo" not in view.tools:
            need.append("sudo")
    if cfg.firewall.enabled and (not view.reachable or "nft" not in view.tools):
        need.append("nftables")
    if cfg.unattended_upgrades and not view.upgrades.get("package", "").startswith("ii"):
        need.append("unattended-upgrades")
    if need:
        change("", "create", f"install packages: {', '.join(need)}",
               (Op("apt.packages", {"packages": need, "update": True, "cache_time": 3600}),))
    else:
        same.append(f"{host}: sudo, nftables, unattended-upgrades installed")

    # --- the guard (before anything guarded can run)
    guard_ok = (view.guard.get("script") == sha256(GUARD_SCRIPT) and view.guard.get("unit") == sha256(GUARD_UNIT_TEXT)
                and view.guard.get("enabled") == "enabled")
    if not guard_ok:
        change("homelab-guard", "create" if not view.guard.get("script") else "update",
               "install (sshd and firewall changes revert unless a new login confirms them)", guard_install_ops())
    else:
        same.append(f"{host}: homelab-guard installed")

    # --- users
    for user in cfg.users:
        summary, ops = _user_ops(user, wanted_keys(user, cfg, inp.operator_key), view)
        if ops:
            acc = view.accounts.get(user.name)
            c = change(f"user {user.name}", "create" if not (acc and acc.exists) else "update", summary, ops)
            if operator is not None and user.name == operator.name:
                switch_after.append(c)
        else:
            same.append(f"{host}: user {user.name} as configured")
    root_keys_path = f"{KEYS_DIR}/root"
    root_file = view.keys.get("root")
    if cfg.sshd.root_login and inp.operator_key:
        content = render_keys_file("root", (inp.operator_key,))
        if not root_file or root_file.sha != sha256(content):
            change("root", "update", "may log in with the operator key",
                   (_put(content, root_keys_path, "644"),))
    elif not cfg.sshd.root_login and root_file and root_file.exists:
        change("root", "delete", "remove root's login keys",
               (Op("server.shell", {"commands": [f"rm -f {root_keys_path}"]}),))

    # --- users dropped from the config: lock them out
    removals: list[tuple[str, Change]] = []
    keep_managed: list[str] = []
    for name in sorted(set(inp.managed) - set(configured)):
        acc = view.accounts.get(name)
        exists = bool(acc and acc.exists)
        locked = exists and view.expired(name) and acc is not None and acc.shell == NOLOGIN
        leftovers = (exists and not locked) or view.keys.get(name, FileState(False)).exists or name in view.sudoers
        if not view.reachable:
            leftovers = True
        if not leftovers:
            same.append(f"{host}: user {name} has no access (removed earlier)")
            continue
        if name == inp.user:
            warnings.append(f"{host}: user {name} left the config, but homelab is logged in as {name}; its access is "
                            f"removed on the next apply (homelab logs in as {login_user} from now on)")
            keep_managed.append(name)
            continue
        removals.append((name, change(
            f"user {name}", "delete", "removed from the config: lock the account, drop its keys and sudo, end its "
            "sessions", (Op("server.shell", {"commands": remove_user_commands(name, exists)}),))))

    # --- sshd
    openssh = view.openssh or DEFAULT_OPENSSH
    dropin = render_sshd_dropin(cfg.sshd, openssh)
    firewall_text = ""
    if cfg.firewall.enabled:
        spec, fw_warn = firewall_spec(host, cfg, (cfg.sshd.port,), inp.mesh)
        warnings += fw_warn
        firewall_text = render_nft_ruleset(spec)
    sshd_needed = view.sshd_file.sha != sha256(dropin)
    if sshd_needed and not sshd_blocked:
        if moving and cfg.firewall.enabled and view.nft_loaded:
            # let the new port in first, or the confirming login could not reach it
            both, _ = firewall_spec(host, cfg, tuple(sorted(ports_now | {cfg.sshd.port})), inp.mesh)
            change("firewall", "update", f"open port {cfg.sshd.port} while sshd moves there",
                   guarded_ops("nft", render_nft_ruleset(both), cfg.revert_after, {**confirm, "port": inp.port}))
        version = ".".join(map(str, openssh)) + ("" if view.openssh else " assumed")
        switch_after.append(change("sshd", "update" if view.sshd_file.exists else "create",
               f"harden (OpenSSH {version}): root login {'on' if cfg.sshd.root_login else 'off'}, password login "
               f"{'on' if cfg.sshd.password_login else 'off'}, port {cfg.sshd.port}; kept only if a new login as "
               f"{login_user} works within {cfg.revert_after} s",
               guarded_ops("sshd", dropin, cfg.revert_after, {**confirm, "users": [login_user], "fallback": tried}),
               text_diff(view.sshd_file.text, dropin, DROPIN)))
    elif not sshd_needed:
        same.append(f"{host}: sshd hardened ({DROPIN})")

    # --- firewall
    if cfg.firewall.enabled:
        file_ok = view.nft_file.sha == sha256(firewall_text)
        if not file_ok or not view.nft_loaded or not view.nft_same:
            why = ("rules differ from the file" if file_ok and view.nft_loaded else
                   "not loaded" if file_ok else "new rules")
            change("firewall", "update" if view.nft_file.exists else "create",
                   f"{why}: inbound default deny, sshd {cfg.sshd.port}; kept only if a new login works within "
                   f"{cfg.revert_after} s", guarded_ops("nft", firewall_text, cfg.revert_after, confirm),
                   text_diff(view.nft_file.text, firewall_text, NFT_LIVE))
        else:
            same.append(f"{host}: firewall loaded (table {TABLE}, policy {view.nft_policy or '?'})")
        if view.guard.get("fwunit") != sha256(FIREWALL_UNIT_TEXT) or view.guard.get("fwenabled") != "enabled":
            change("firewall", "update", "load at boot (homelab-firewall.service)", (
                _put(FIREWALL_UNIT_TEXT, FIREWALL_UNIT, "644"),
                Op("server.shell", {"commands": ["systemctl daemon-reload",
                                                 "systemctl enable homelab-firewall.service"]}),
            ))
    elif view.nft_loaded or view.nft_file.exists:
        change("firewall", "delete", "firewall disabled in the config: unload table inet homelab", (
            Op("server.shell", {"commands": [
                "if nft list table inet homelab >/dev/null 2>&1; then nft delete table inet homelab; fi",
                f"rm -f {NFT_LIVE} {NFT_LISTING}",
                "systemctl disable homelab-firewall.service 2>/dev/null || true",
            ]}),))

    # --- unattended upgrades
    if cfg.unattended_upgrades:
        if view.upgrades.get("conf") != sha256(UPGRADES_TEXT):
            change("unattended-upgrades", "update", f"security updates every day ({UPGRADES_CONF})",
                   (_put(UPGRADES_TEXT, UPGRADES_CONF, "644"),))
        else:
            same.append(f"{host}: unattended upgrades on")

    # switch only when the operator user can log in: its keys are read through our drop-in
    login = None if sshd_blocked and not view.sshd_file.exists else Login(login_user, confirm_port, inp.key_path)
    if operator is not None and not inp.operator_key:
        login = None
    managed = tuple(sorted(set(configured) | set(keep_managed) | {name for name, _ in removals}))
    return HostPlan(tuple(changes), tuple(same), tuple(warnings), login, tuple(switch_after), tuple(removals), managed)


def _put(content: str, dest: str, mode: str) -> Op:
    return Op("files.put_text", {"content": content, "dest": dest, "user": "root", "group": "root", "mode": mode})


def _user_ops(user: OperatorUser, keys: tuple[str, ...], view: HostView) -> tuple[str, tuple[Op, ...]]:
    """(summary, ops) to make one configured user exactly as wanted."""
    ops: list[Op] = []
    what: list[str] = []
    acc = view.accounts.get(user.name)
    if not view.reachable or acc is None or not acc.exists:
        ops.append(Op("server.shell", {"commands": [create_user_command(user.name)]}))
        what.append("create")
    elif view.expired(user.name) or acc.shell == NOLOGIN:
        ops.append(Op("server.shell", {"commands": [unlock_user_command(user.name)]}))
        what.append("unlock (was removed before)")
    content = render_keys_file(user.name, keys)
    have = view.keys.get(user.name)
    if have is None or have.sha != sha256(content):
        old = {key_identity(ln) for ln in (have.text.splitlines() if have else []) if ln and not ln.startswith("#")}
        new = {key_identity(k) for k in keys}
        added = [key_label(k) for k in keys if key_identity(k) not in old]
        gone = len(old - new)
        ops.append(Op("files.directory", {"path": KEYS_DIR, "user": "root", "group": "root", "mode": "755"}))
        ops.append(_put(content, f"{KEYS_DIR}/{user.name}", "644"))
        what.append(f"keys: {len(keys)}" + (f", + {', '.join(added)}" if added else "") + (f", - {gone}" if gone else ""))
    sudo = render_sudoers(user.name)
    if user.sudo and view.sudoers.get(user.name) != sha256(sudo):
        ops.append(_put(sudo, f"{STAGING}/sudoers-{user.name}", "440"))
        ops.append(Op("server.shell", {"commands": [install_sudoers_command(user.name)]}))
        what.append("sudo")
    elif not user.sudo and user.name in view.sudoers:
        ops.append(Op("server.shell", {"commands": [f"rm -f {shlex.quote(SUDOERS_PREFIX + user.name)}"]}))
        what.append("no sudo")
    return ", ".join(what), tuple(ops)
