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

from homelab.claims import Claims
from homelab.config.permissions import OperatorUser, PermissionsConfig, key_identity
from homelab.layers.permissions.firewall import LIVE_FILE as NFT_LIVE
from homelab.layers.permissions.firewall import TABLE, firewall_spec, render_nft_ruleset
from homelab.provision.guard import (
    FIREWALL_UNIT, FIREWALL_UNIT_TEXT, GUARD_SCRIPT, GUARD_UNIT_TEXT, NFT_LISTING, guard_install_ops, guarded_ops,
    sha256,
)
from homelab.layers.permissions.probes import SUDOERS_PREFIX, UPGRADE_TIMERS, UPGRADES_CONF, FileState, HostView
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
    claims: Claims = field(default_factory=Claims)  # every layer's claims (ports this host must let in)


@dataclass(frozen=True)
class HostPlan:
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    login: Login | None = None  # switch to this login once `switch_after` are applied
    switch_after: tuple[Change, ...] = ()  # the operator user's change and the sshd change, if planned
    removals: tuple[tuple[str, Change], ...] = ()  # (user, change) that removes a user's access
    managed: tuple[str, ...] = ()  # users state should list (removed ones leave once removed)
    notes: tuple[str, ...] = ()


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
@dataclass
class _Builder:
    """Collects one host's plan, section by section, in order."""

    host: str
    changes: list[Change] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def change(self, target: str, action: str, summary: str, ops: tuple[Op, ...],
               detail: tuple[str, ...] = ()) -> Change:
        c = Change(LAYER, self.host, action, f"{target}: {summary}" if target else summary, ops=ops, host=self.host,
                   detail=detail)
        self.changes.append(c)
        return c

    def ok(self, why: str) -> None:
        self.same.append(f"{self.host}: {why}")


@dataclass(frozen=True)
class _Access:
    """Who homelab logs in as once this plan is applied, and how guarded changes are confirmed."""

    login_user: str
    confirm_port: int  # where sshd listens once the plan is applied
    ports_now: frozenset[int]
    moving: bool  # sshd moves to another port
    blocked: str  # why the sshd change must not happen ("" = it may)
    confirm: dict[str, Any]  # confirm.ConfirmSpec without kind/token/window


def _access(cfg: PermissionsConfig, inp: HostInputs, view: HostView) -> _Access:
    host, operator = inp.host, cfg.operator
    login_user = operator.name if operator is not None else inp.user
    ports_now = frozenset(effective_ports(dict(view.effective)))
    moving = view.reachable and bool(ports_now) and cfg.sshd.port not in ports_now
    confirm_port = inp.port
    blocked = ""
    if moving:
        if inp.port in ports_now:
            confirm_port = cfg.sshd.port
        else:  # homelab reaches sshd through a forwarded port we cannot move
            blocked = (f"{host}: sshd would move to port {cfg.sshd.port}, but homelab reaches it on port {inp.port} "
                       "(forwarded?); sshd left unchanged: change the forwarding and compute's port first, or keep "
                       "permissions.sshd.port")
    if inp.host_key and inp.host_key.split()[0] not in HOST_KEY_ALGORITHMS:
        blocked = (f"{host}: the pinned host key is {inp.host_key.split()[0]}, but the hardened sshd offers only "
                   f"{', '.join(HOST_KEY_ALGORITHMS)}; sshd left unchanged (re-pin: homelab forget-host, then apply "
                   "with --accept-new-host-keys)")
    if operator is not None and not inp.operator_key:
        blocked = f"{host}: the operator public key is unknown; sshd left unchanged so homelab keeps its way in"
    if operator is None and inp.user != "root":
        # only the operator user and root get the operator key in the managed key files
        blocked = (f"{host}: homelab logs in as {inp.user}, which would lose its keys; sshd left unchanged: add "
                   f"{inp.user} to permissions.users with sudo: true")
    if blocked:
        confirm_port = inp.port
    # a new login as the user homelab switches to confirms; after a revert, any of these may answer
    tried = list(dict.fromkeys([login_user, inp.user]))
    confirm = {"host": host, "address": inp.address, "port": confirm_port, "users": tried, "key_path": inp.key_path,
               "use_agent": inp.use_agent, "host_key": inp.host_key, "fallback_port": inp.port}
    return _Access(login_user, confirm_port, ports_now, moving, blocked, confirm)


def plan_host(cfg: PermissionsConfig, inp: HostInputs, view: HostView) -> HostPlan:
    b = _Builder(inp.host)
    acc = _access(cfg, inp, view)
    if acc.blocked:
        b.warnings.append(acc.blocked)
    _plan_packages(b, cfg, view)
    _plan_guard(b, view)
    operator_change = _plan_users(b, cfg, inp, view)
    removals, kept = _plan_removals(b, cfg, inp, view, acc)
    sshd_change = _plan_sshd_and_firewall(b, cfg, inp, view, acc)
    _plan_upgrades(b, cfg, view)
    # switch only when the operator user can log in: its keys are read through our drop-in
    login = None if acc.blocked and not view.sshd_file.exists else Login(acc.login_user, acc.confirm_port, inp.key_path)
    if cfg.operator is not None and not inp.operator_key:
        login = None
    switch_after = tuple(c for c in (operator_change, sshd_change) if c is not None)
    managed = tuple(sorted({u.name for u in cfg.users} | set(kept) | {name for name, _ in removals}))
    return HostPlan(tuple(b.changes), tuple(b.same), tuple(b.warnings), login, switch_after, tuple(removals), managed,
                    tuple(b.notes))


def _plan_packages(b: _Builder, cfg: PermissionsConfig, view: HostView) -> None:
    """What the layer's own tools need (visudo, nft, unattended-upgrades): claimed in
    config/permissions.py, installed by compute's one apt transaction before this layer runs."""
    need: list[str] = []
    if any(u.sudo for u in cfg.users) and (not view.reachable or "visudo" not in view.tools):
        need.append("sudo")
    if cfg.firewall.enabled and (not view.reachable or "nft" not in view.tools):
        need.append("nftables")
    if cfg.unattended_upgrades and not view.upgrades.get("package", "").startswith("ii"):
        need.append("unattended-upgrades")
    if need:
        b.notes.append(f"{b.host}: {', '.join(need)} not installed yet (compute's package step installs them)")
    else:
        b.ok("the packages this layer needs are installed")


def _plan_guard(b: _Builder, view: HostView) -> None:
    """homelab-guard before anything guarded can run."""
    if (view.guard.get("script") == sha256(GUARD_SCRIPT) and view.guard.get("unit") == sha256(GUARD_UNIT_TEXT)
            and view.guard.get("enabled") == "enabled"):
        b.ok("homelab-guard installed")
        return
    b.change("homelab-guard", "create" if not view.guard.get("script") else "update",
             "install (sshd and firewall changes revert unless a new login confirms them)", guard_install_ops())


def _plan_users(b: _Builder, cfg: PermissionsConfig, inp: HostInputs, view: HostView) -> Change | None:
    """Configured users exactly as wanted; returns the operator user's change, if any."""
    operator_change = None
    for user in cfg.users:
        summary, ops = _user_ops(user, wanted_keys(user, cfg, inp.operator_key), view)
        if not ops:
            b.ok(f"user {user.name} as configured")
            continue
        acc = view.accounts.get(user.name)
        c = b.change(f"user {user.name}", "update" if acc and acc.exists else "create", summary, ops)
        if cfg.operator is not None and user.name == cfg.operator.name:
            operator_change = c
    root_keys_path = f"{KEYS_DIR}/root"
    root_file = view.keys.get("root")
    if cfg.sshd.root_login and inp.operator_key:
        content = render_keys_file("root", (inp.operator_key,))
        if not root_file or root_file.sha != sha256(content):
            b.change("root", "update", "may log in with the operator key", (_put(content, root_keys_path, "644"),))
    elif not cfg.sshd.root_login and root_file and root_file.exists:
        b.change("root", "delete", "remove root's login keys",
                 (Op("server.shell", {"commands": [f"rm -f {root_keys_path}"]}),))
    return operator_change


def _plan_removals(b: _Builder, cfg: PermissionsConfig, inp: HostInputs, view: HostView, access: _Access
                   ) -> tuple[list[tuple[str, Change]], list[str]]:
    """Users dropped from the config lose access. Returns (removals, users kept for later)."""
    removals: list[tuple[str, Change]] = []
    kept: list[str] = []
    for name in sorted(set(inp.managed) - {u.name for u in cfg.users}):
        acc = view.accounts.get(name)
        exists = bool(acc and acc.exists)
        locked = exists and view.expired(name) and acc is not None and acc.shell == NOLOGIN
        leftovers = (exists and not locked) or view.keys.get(name, FileState(False)).exists or name in view.sudoers
        if view.reachable and not leftovers:
            b.ok(f"user {name} has no access (removed earlier)")
            continue
        if name == inp.user:
            b.warnings.append(f"{b.host}: user {name} left the config, but homelab is logged in as {name}; its access "
                              f"is removed on the next apply (homelab logs in as {access.login_user} from now on)")
            kept.append(name)
            continue
        removals.append((name, b.change(
            f"user {name}", "delete", "removed from the config: lock the account, drop its keys and sudo, end its "
            "sessions", (Op("server.shell", {"commands": remove_user_commands(name, exists)}),))))
    return removals, kept


def _plan_sshd_and_firewall(b: _Builder, cfg: PermissionsConfig, inp: HostInputs, view: HostView, acc: _Access
                            ) -> Change | None:
    """sshd, then the firewall (guarded); returns the sshd change, if any."""
    openssh = view.openssh or DEFAULT_OPENSSH
    dropin = render_sshd_dropin(cfg.sshd, openssh)
    sshd_change = None
    # a drop-in that matches but is still on probation (an apply died before its new login
    # confirmed it) is not converged: the host undoes it a revert window later
    probation = view.guard.get("sshd", "").split()[:1] == ["pending"]
    if view.sshd_file.sha == sha256(dropin) and not probation:
        b.ok(f"sshd hardened ({DROPIN})")
    elif not acc.blocked:
        if acc.moving and cfg.firewall.enabled and view.nft_loaded:
            # let the new port in first, or the confirming login could not reach it
            both = firewall_spec(inp.host, tuple(sorted(acc.ports_now | {cfg.sshd.port})), inp.claims)
            b.change("firewall", "update", f"open port {cfg.sshd.port} while sshd moves there",
                     guarded_ops("nft", render_nft_ruleset(both), cfg.revert_after, {**acc.confirm, "port": inp.port}))
        version = ".".join(map(str, openssh)) + ("" if view.openssh else " assumed")
        unconfirmed = ("on probation, never confirmed (an earlier apply stopped before its new login; the host "
                       "would undo it): try again and confirm: " if probation else "")
        sshd_change = b.change(
            "sshd", "update" if view.sshd_file.exists else "create",
            f"{unconfirmed}harden (OpenSSH {version}): root login {'on' if cfg.sshd.root_login else 'off'}, password login "
            f"{'on' if cfg.sshd.password_login else 'off'}, port {cfg.sshd.port}; kept only if a new login as "
            f"{acc.login_user} works within {cfg.revert_after} s",
            guarded_ops("sshd", dropin, cfg.revert_after,
                        {**acc.confirm, "users": [acc.login_user], "fallback": acc.confirm["users"]}),
            text_diff(view.sshd_file.text, dropin, DROPIN))
    if cfg.firewall.enabled:
        spec = firewall_spec(inp.host, (cfg.sshd.port,), inp.claims)
        _plan_firewall(b, cfg, view, render_nft_ruleset(spec), acc)
    elif view.nft_loaded or view.nft_file.exists:
        b.change("firewall", "delete", "firewall disabled in the config: unload table inet homelab", (
            Op("server.shell", {"commands": [
                "if nft list table inet homelab >/dev/null 2>&1; then nft delete table inet homelab; fi",
                f"rm -f {NFT_LIVE} {NFT_LISTING}",
                "systemctl disable homelab-firewall.service 2>/dev/null || true",
            ]}),))
    return sshd_change


def _plan_firewall(b: _Builder, cfg: PermissionsConfig, view: HostView, text: str, acc: _Access) -> None:
    file_ok = view.nft_file.sha == sha256(text)
    if file_ok and view.nft_loaded and view.nft_same:
        b.ok(f"firewall loaded (table {TABLE}, policy {view.nft_policy or '?'})")
    else:
        why = "rules differ from the file" if file_ok and view.nft_loaded else "not loaded" if file_ok else "new rules"
        b.change("firewall", "update" if view.nft_file.exists else "create",
                 f"{why}: inbound default deny, sshd {cfg.sshd.port}; kept only if a new login works within "
                 f"{cfg.revert_after} s", guarded_ops("nft", text, cfg.revert_after, acc.confirm),
                 text_diff(view.nft_file.text, text, NFT_LIVE))
    if view.guard.get("fwunit") != sha256(FIREWALL_UNIT_TEXT) or view.guard.get("fwenabled") != "enabled":
        b.change("firewall", "update", "load at boot (homelab-firewall.service)", (
            _put(FIREWALL_UNIT_TEXT, FIREWALL_UNIT, "644"),
            Op("server.shell", {"commands": ["systemctl daemon-reload", "systemctl enable homelab-firewall.service"]}),
        ))


def _plan_upgrades(b: _Builder, cfg: PermissionsConfig, view: HostView) -> None:
    if not cfg.unattended_upgrades:
        return
    if view.upgrades.get("conf") == sha256(UPGRADES_TEXT):
        b.ok("unattended upgrades on")
    else:
        b.change("unattended-upgrades", "update", f"security updates every day ({UPGRADES_CONF})",
                 (_put(UPGRADES_TEXT, UPGRADES_CONF, "644"),))
    # the config says nothing without apt's timers: apt-daily fetches the lists,
    # apt-daily-upgrade runs unattended-upgrade; stopped, updates never run. A disabled timer
    # is enabled. A masked one is someone's explicit choice (the lab masks them so no
    # background apt holds the dpkg lock): homelab does not override it, the plan says why.
    state = {unit: view.upgrades.get(key, "").split()[:2] for key, unit in UPGRADE_TIMERS}
    masked = [unit for unit, s in state.items() if s[:1] == ["masked"]]
    stopped = [unit for unit, s in state.items() if s != ["enabled", "active"] and unit not in masked]
    if masked:
        b.warnings.append(f"{b.host}: {' and '.join(masked)} masked: unattended upgrades never run there; homelab "
                          "leaves a masked unit alone (`systemctl unmask` it, or set permissions.unattended_upgrades:"
                          " false)")
    if stopped:
        units = " ".join(stopped)
        why = "; ".join(f"{unit} is {' '.join(state[unit]) or 'missing'}" for unit in stopped)
        b.change("unattended-upgrades", "update", f"enable apt's update timers ({why})", (
            Op("server.shell", {"commands": [f"systemctl enable --now {units}"]}),))
    elif not masked:
        b.ok("apt's update timers enabled and active")


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
        what.append(f"keys: {len(keys)}" + (f", + {', '.join(added)}" if added else "")
                    + (f", - {gone}" if gone else ""))
    sudo = render_sudoers(user.name)
    if user.sudo and view.sudoers.get(user.name) != sha256(sudo):
        ops.append(_put(sudo, f"{STAGING}/sudoers-{user.name}", "440"))
        ops.append(Op("server.shell", {"commands": [install_sudoers_command(user.name)]}))
        what.append("sudo")
    elif not user.sudo and user.name in view.sudoers:
        ops.append(Op("server.shell", {"commands": [f"rm -f {shlex.quote(SUDOERS_PREFIX + user.name)}"]}))
        what.append("no sudo")
    return ", ".join(what), tuple(ops)
