"""What the permissions layer reads on a host (read-only shell, batched by the engine) and
the pure parsers that turn the output into a HostView for the diff and the monitors.

Managed files are read whole, with a `|` printed after them so the content comes back exact
(the probe transport trims one trailing newline); their sha256 is taken here, not on the host.
Every probe runs on every host at every no-op, so each is written for few processes: one
`sha256sum` for all hashed files, one `systemctl show` for all units, one `nft list`, the
guard's state read with shell builtins.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from homelab.layers.permissions.firewall import LIVE_FILE as NFT_LIVE
from homelab.provision.guard import FIREWALL_UNIT, GUARD_PATH, GUARD_UNIT, NFT_LISTING, status_read
from homelab.layers.permissions.sshd import DROPIN, KEYS_DIR, parse_effective, parse_openssh_version
from homelab.probe import AnyProbe, ProbeResult, packages, parse_packages, parse_sha256, parse_unit_states, unit_states

UPGRADES_CONF = "/etc/apt/apt.conf.d/20auto-upgrades"
PACKAGES_READ = ("openssh-server", "unattended-upgrades")
SUDOERS_PREFIX = "/etc/sudoers.d/homelab-"
MISSING_RC = 3  # a file probe's exit code when the file does not exist
END = "|"  # printed right after a file's content: what comes before it is the file, exactly
# (key in HostView.upgrades, unit): the timers unattended upgrades need
UPGRADE_TIMERS = (("dltimer", "apt-daily.timer"), ("timer", "apt-daily-upgrade.timer"))
# (key in HostView.guard, unit file): the guard's own units, enabled at boot
GUARD_UNITS = (("enabled", GUARD_UNIT), ("fwenabled", FIREWALL_UNIT))
# key in HostView.guard -> the guard's file, known by its hash
GUARD_FILES = {"script": GUARD_PATH, "unit": GUARD_UNIT, "fwunit": FIREWALL_UNIT}
# every file known by its hash, in one sha256sum (sudoers files are found by their prefix)
HASHED = (*GUARD_FILES.values(), UPGRADES_CONF)


def _file(path: str) -> str:
    p = shlex.quote(path)
    return f"if [ -f {p} ]; then cat {p}; printf '{END}'; else exit {MISSING_RC}; fi"


def _unit(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def permission_probes(users: Iterable[str], pending: bool = True) -> dict[str, AnyProbe]:
    """Probe snippets; `users` are every name we configure or once managed (validated names).
    `pending`: simulate an upgrade for the monitors (status only: apt reading its package
    lists is the layer's most expensive check, and no plan reads it)."""
    names = sorted(set(users))
    quoted = " ".join(shlex.quote(u) for u in names)
    hashed = " ".join(shlex.quote(p) for p in HASHED)
    units = [_unit(u) for _, u in GUARD_UNITS] + [u for _, u in UPGRADE_TIMERS]
    probes: dict[str, AnyProbe] = {
        # OpenSSH's and unattended-upgrades' versions: a batched question (one dpkg-query for
        # every layer); `ssh -V` only where OpenSSH is not Debian's package
        "permissions.packages": packages(PACKAGES_READ),
        "permissions.openssh": "[ -e /var/lib/dpkg/info/openssh-server.list ] || ssh -V 2>&1; true",
        "permissions.tools": "for t in nft visudo systemd-run sshd flock; do command -v $t >/dev/null && echo $t; "
                             "done; true",
        "permissions.sshd_effective": "sshd -T 2>/dev/null | grep -E '^(port|permitrootlogin|passwordauthentication|"
                                      "kbdinteractiveauthentication|authorizedkeysfile|pubkeyauthentication|"
                                      "authenticationmethods) '",
        "permissions.file.sshd": _file(DROPIN),
        "permissions.file.nft": _file(NFT_LIVE),
        "permissions.hashes": f"sha256sum {hashed} {SUDOERS_PREFIX}* 2>/dev/null; true",
        "permissions.units": unit_states(units),
        "permissions.guard": f"if [ -x {GUARD_PATH} ]; then {status_read()}; fi; true",
        # one `nft list`: the input chain's policy is cut out of it, and it is compared with
        # the listing saved right after the last confirmed load (drift: changed outside homelab)
        "permissions.nft_live": (
            "if command -v nft >/dev/null && t=$(nft list table inet homelab 2>/dev/null); then echo loaded; "
            "case $t in *'chain input {'*) r=${t#*'chain input {'}; case $r in *'policy '*) r=${r#*'policy '}; "
            "echo \"policy ${r%%;*}\";; esac;; esac; "
            f"if [ \"$t\" = \"$(cat {NFT_LISTING} 2>/dev/null)\" ]; then echo same; else echo drift; fi; "
            "else echo missing; fi"),
    }
    if pending:  # simulation only: no lock taken, nothing downloaded; lists are as fresh as apt's last update
        probes["permissions.pending"] = "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst ' ; true"
    if names:
        # passwd lines as getent prints them (7 fields); of /etc/shadow only `name:expiry day`
        # leaves the host (cut runs there)
        probes["permissions.accounts"] = (
            f"echo \"today $(( $(date +%s) / 86400 ))\"; echo \"want {' '.join(names)}\"; "
            f"getent passwd {quoted}; getent shadow {quoted} | cut -d: -f1,8; "
            "true")
        for u in names:
            probes[f"permissions.keys:{u}"] = _file(f"{KEYS_DIR}/{u}")
    return probes


# ------------------------------------------------------------------ parse ----
@dataclass(frozen=True)
class FileState:
    exists: bool
    sha: str = ""
    text: str = ""  # as read (trailing newlines may be trimmed; compare `sha`)


@dataclass(frozen=True)
class Account:
    name: str
    exists: bool
    shell: str = ""
    expires: int | None = None  # days since 1970; None = never


@dataclass(frozen=True)
class HostView:
    """Everything read from one host, parsed. `reachable=False`: nothing was read (new server)."""

    reachable: bool
    openssh: tuple[int, int] | None = None
    tools: frozenset[str] = frozenset()
    effective: Mapping[str, list[str]] = field(default_factory=dict)
    sshd_file: FileState = FileState(False)
    nft_file: FileState = FileState(False)
    guard: Mapping[str, str] = field(default_factory=dict)  # script/unit/fwunit sha, enabled, sshd/nft status
    nft_loaded: bool = False
    nft_policy: str = ""
    nft_same: bool = False
    sudoers: Mapping[str, str] = field(default_factory=dict)  # user -> sha of /etc/sudoers.d/homelab-<user>
    accounts: Mapping[str, Account] = field(default_factory=dict)
    today: int = 0
    keys: Mapping[str, FileState] = field(default_factory=dict)
    upgrades: Mapping[str, str] = field(default_factory=dict)  # package, conf, timer
    pending: tuple[str, ...] = ()  # `Inst ...` lines of a simulated upgrade

    def expired(self, user: str) -> bool:
        acc = self.accounts.get(user)
        return bool(acc and acc.expires is not None and acc.expires <= self.today)


def parse_file(result: ProbeResult | None) -> FileState:
    if result is None or result.rc == MISSING_RC or not result.ok or not result.out.endswith(END):
        return FileState(False)
    text = result.out[:-len(END)]
    return FileState(True, hashlib.sha256(text.encode()).hexdigest(), text)


def _pairs(result: ProbeResult | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if result is None:
        return out
    for line in result.lines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def parse_accounts(result: ProbeResult | None) -> tuple[dict[str, Account], int]:
    accounts: dict[str, Account] = {}
    today = 0
    if result is None:
        return accounts, today
    wanted: list[str] = []
    shells: dict[str, str] = {}
    expiry: dict[str, str] = {}
    for line in result.lines():
        if line.startswith("today "):
            value = line.split()[-1]
            today = int(value) if value.isdigit() else 0
        elif line.startswith("want "):
            wanted = line.split()[1:]
        elif line.count(":") == 6:  # passwd: name:x:uid:gid:gecos:home:shell
            fields = line.split(":")
            shells[fields[0]] = fields[6]
        elif line.count(":") == 1:  # shadow, cut to name:expiry
            name, _, day = line.partition(":")
            expiry[name] = day
    for name in wanted:
        if name in shells:
            day = expiry.get(name, "")
            accounts[name] = Account(name, True, shells[name], int(day) if day.isdigit() else None)
        else:
            accounts[name] = Account(name, False)
    return accounts, today


def parse_host(probed: Mapping[str, ProbeResult] | None) -> HostView:
    if probed is None:
        return HostView(reachable=False)
    versions = parse_packages(probed["permissions.packages"]) if "permissions.packages" in probed else {}
    ssh_v = probed.get("permissions.openssh")
    nft = _pairs(probed.get("permissions.nft_live"))
    nft_lines = probed["permissions.nft_live"].lines() if "permissions.nft_live" in probed else []
    accounts, today = parse_accounts(probed.get("permissions.accounts"))
    hashes = parse_sha256(probed.get("permissions.hashes"))
    units = parse_unit_states(probed["permissions.units"]) if "permissions.units" in probed else {}
    guard = {label: hashes[path] for label, path in GUARD_FILES.items() if path in hashes}
    guard.update({key: units.get(_unit(path), ("", ""))[0] for key, path in GUARD_UNITS})
    guard.update(_pairs(probed.get("permissions.guard")))
    upgrades = {"package": "ii" if versions.get("unattended-upgrades") else ""}
    if UPGRADES_CONF in hashes:
        upgrades["conf"] = hashes[UPGRADES_CONF]
    for key, unit in UPGRADE_TIMERS:
        if unit in units:
            upgrades[key] = " ".join(units[unit])
    sudoers = {path[len(SUDOERS_PREFIX):]: sha for path, sha in hashes.items() if path.startswith(SUDOERS_PREFIX)}
    tools = probed.get("permissions.tools")
    pending = probed.get("permissions.pending")
    return HostView(
        reachable=True,
        openssh=parse_openssh_version(versions.get("openssh-server") or (ssh_v.out if ssh_v else "")),
        tools=frozenset(tools.lines() if tools else ()),
        effective=parse_effective(probed.get("permissions.sshd_effective")),
        sshd_file=parse_file(probed.get("permissions.file.sshd")),
        nft_file=parse_file(probed.get("permissions.file.nft")),
        guard=guard,
        nft_loaded="loaded" in nft_lines,
        nft_policy=nft.get("policy", ""),
        nft_same="same" in nft_lines,
        sudoers=sudoers,
        accounts=accounts,
        today=today,
        keys={k.split(":", 1)[1]: parse_file(v) for k, v in probed.items() if k.startswith("permissions.keys:")},
        upgrades=upgrades,
        pending=tuple(pending.lines()) if pending else (),
    )


def security_updates(pending: tuple[str, ...]) -> list[str]:
    """Package names of pending upgrades that come from a security suite."""
    out = []
    for line in pending:
        if "-security" in line or "Debian-Security" in line:
            parts = line.split()
            if len(parts) > 1:
                out.append(parts[1])
    return out
