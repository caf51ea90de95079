"""What the permissions layer reads on a host (read-only shell, batched by the engine) and
the pure parsers that turn the output into a HostView for the diff and the monitors.

Managed files are read as "sha256 + content": the hash makes the comparison exact (the probe
transport trims trailing newlines), the content lets the plan show what would change.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from homelab.layers.permissions.firewall import LIVE_FILE as NFT_LIVE
from homelab.provision.guard import FIREWALL_UNIT, GUARD_PATH, GUARD_UNIT, NFT_LISTING
from homelab.layers.permissions.sshd import DROPIN, KEYS_DIR, parse_effective, parse_openssh_version
from homelab.probe import ProbeResult, unit_states

UPGRADES_CONF = "/etc/apt/apt.conf.d/20auto-upgrades"
SUDOERS_PREFIX = "/etc/sudoers.d/homelab-"
MISSING_RC = 3  # a file probe's exit code when the file does not exist
# (key in HostView.upgrades, unit): the timers unattended upgrades need
UPGRADE_TIMERS = (("dltimer", "apt-daily.timer"), ("timer", "apt-daily-upgrade.timer"))


def _file(path: str) -> str:
    p = shlex.quote(path)
    return f"if [ -f {p} ]; then sha256sum < {p} | cut -c1-64; cat {p}; else exit {MISSING_RC}; fi"


def _sha_lines(files: Mapping[str, str]) -> str:
    """`LABEL SHA256` per file that exists, from one sha256sum for all (forks add up in a no-op)."""
    paths = " ".join(shlex.quote(p) for p in files.values())
    cases = " ".join(f"{shlex.quote(p)}) echo {label} $h;;" for label, p in files.items())
    return f"sha256sum {paths} 2>/dev/null | while read -r h f; do case $f in {cases} esac; done"


def permission_probes(users: Iterable[str], pending: bool = True) -> dict[str, str]:
    """Probe snippets; `users` are every name we configure or once managed (validated names).
    `pending`: simulate an upgrade for the monitors (status only: apt reading its package
    lists is the layer's most expensive check, and no plan reads it)."""
    names = sorted(set(users))
    quoted = " ".join(shlex.quote(u) for u in names)
    probes = {
        "permissions.openssh": "dpkg-query -W -f='${Version}\\n' openssh-server 2>/dev/null || ssh -V 2>&1",
        "permissions.tools": "for t in nft visudo systemd-run sshd flock; do command -v $t >/dev/null && echo $t; "
                             "done; true",
        "permissions.sshd_effective": "sshd -T 2>/dev/null | grep -E '^(port|permitrootlogin|passwordauthentication|"
                                      "kbdinteractiveauthentication|authorizedkeysfile|pubkeyauthentication|"
                                      "authenticationmethods) '",
        "permissions.file.sshd": _file(DROPIN),
        "permissions.file.nft": _file(NFT_LIVE),
        "permissions.guard": "; ".join([
            _sha_lines({"script": GUARD_PATH, "unit": GUARD_UNIT, "fwunit": FIREWALL_UNIT}),
            "printf 'enabled %s\\n' \"$(systemctl is-enabled homelab-guard.service 2>/dev/null)\"",
            "printf 'fwenabled %s\\n' \"$(systemctl is-enabled homelab-firewall.service 2>/dev/null)\"",
            f"if [ -x {GUARD_PATH} ]; then for k in sshd nft; do printf '%s %s\\n' $k \"$({GUARD_PATH} status $k)\"; "
            "done; fi; true",
        ]),
        "permissions.nft_live": (
            "if command -v nft >/dev/null && nft list table inet homelab >/dev/null 2>&1; then echo loaded; "
            "nft list chain inet homelab input 2>/dev/null | grep -o 'policy [a-z]*' | head -n1; "
            f"if nft list table inet homelab 2>/dev/null | cmp -s - {NFT_LISTING}; "
            "then echo same; else echo drift; fi; "
            "else echo missing; fi"),
        "permissions.sudoers": f"for f in {SUDOERS_PREFIX}*; do [ -f \"$f\" ] && "
                               "printf '%s %s\\n' \"${f##*/}\" \"$(sha256sum < \"$f\" | cut -c1-64)\"; done; true",
        "permissions.upgrades": "; ".join([
            "printf 'package %s\\n' \"$(dpkg-query -W -f='${db:Status-Abbrev}' unattended-upgrades 2>/dev/null)\"",
            _sha_lines({"conf": UPGRADES_CONF}),
            # both timers from one `systemctl show`, read as is-enabled/is-active would say
            unit_states([unit for _, unit in UPGRADE_TIMERS]).command + " | while read -r u f a; do case $u in "
            + " ".join(f"{unit}) echo {key} $f $a;;" for key, unit in UPGRADE_TIMERS) + " esac; done",
        ]),
    }
    if pending:  # simulation only: no lock taken, nothing downloaded; lists are as fresh as apt's last update
        probes["permissions.pending"] = "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst ' ; true"
    if names:
        probes["permissions.accounts"] = (
            f"today=$(( $(date +%s) / 86400 )); echo \"today $today\"; for u in {quoted}; do "
            "if p=$(getent passwd \"$u\"); then e=$(getent shadow \"$u\" | cut -d: -f8); "
            "printf 'user %s %s %s\\n' \"$u\" \"${p##*:}\" \"${e:--}\"; else printf 'none %s\\n' \"$u\"; fi; done")
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
    if result is None or result.rc == MISSING_RC or not result.ok:
        return FileState(False)
    sha, _, text = result.out.partition("\n")
    return FileState(True, sha.strip(), text)


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
    for line in result.lines():
        parts = line.split()
        if parts[0] == "today" and len(parts) == 2 and parts[1].isdigit():
            today = int(parts[1])
        elif parts[0] == "user" and len(parts) == 4:
            exp = int(parts[3]) if parts[3].isdigit() else None
            accounts[parts[1]] = Account(parts[1], True, parts[2], exp)
        elif parts[0] == "none" and len(parts) == 2:
            accounts[parts[1]] = Account(parts[1], False)
    return accounts, today


def parse_host(probed: Mapping[str, ProbeResult] | None) -> HostView:
    if probed is None:
        return HostView(reachable=False)
    openssh_probe = probed.get("permissions.openssh")
    nft = _pairs(probed.get("permissions.nft_live"))
    nft_lines = probed["permissions.nft_live"].lines() if "permissions.nft_live" in probed else []
    accounts, today = parse_accounts(probed.get("permissions.accounts"))
    sudoers = {}
    for name, sha in _pairs(probed.get("permissions.sudoers")).items():
        if name.startswith("homelab-"):
            sudoers[name[len("homelab-"):]] = sha
    tools = probed.get("permissions.tools")
    pending = probed.get("permissions.pending")
    return HostView(
        reachable=True,
        openssh=parse_openssh_version(openssh_probe.out) if openssh_probe else None,
        tools=frozenset(tools.lines() if tools else ()),
        effective=parse_effective(probed.get("permissions.sshd_effective")),
        sshd_file=parse_file(probed.get("permissions.file.sshd")),
        nft_file=parse_file(probed.get("permissions.file.nft")),
        guard=_pairs(probed.get("permissions.guard")),
        nft_loaded="loaded" in nft_lines,
        nft_policy=nft.get("policy", ""),
        nft_same="same" in nft_lines,
        sudoers=sudoers,
        accounts=accounts,
        today=today,
        keys={k.split(":", 1)[1]: parse_file(v) for k, v in probed.items() if k.startswith("permissions.keys:")},
        upgrades=_pairs(probed.get("permissions.upgrades")),
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
