"""`permissions:` (layer 2): who may log in, how sshd is hardened, what the firewall lets in.

Every value that reaches a host ends up in a shell command, an sshd_config line, an nft rule
or an authorized_keys file, so everything is checked here, strictly, with located errors:
user names against a Unix name pattern (and never a system account), SSH keys must be real
OpenSSH public keys (the base64 blob is decoded and must name the same key type), firewall
sources must be IP networks.

How homelab itself keeps logging in: the *first* user with `sudo: true` is the operator user.
homelab adds the operator's public key (privilege.ssh_key + ".pub") to that user's keys by
itself, then logs in as that user from then on. We add the key automatically rather than
asking for it in the config because a typo there (or a key rotated by `privilege`) would lock
homelab out of every machine at once; this way the key homelab holds is, by construction, the
key the machine accepts. With root login off, such a user is required (checked below).
"""
from __future__ import annotations

import base64
import ipaddress
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Iterator

from homelab.claims import Claim, NeedsPackage, OpenPort

from homelab.config.reader import NAME, SSH_PUBKEY, USER, Problems, Section
from homelab.config.yamlpos import Located, show

DEFAULT_REVERT_AFTER = 90  # seconds a new sshd config / firewall stays on probation

# Accounts Debian (and common images) create for services; locking or re-keying one of them
# would break the machine, so they can never be operator users.
RESERVED_USERS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "sshd", "messagebus", "polkitd",
    "systemd-network", "systemd-resolve", "systemd-timesync", "systemd-journal", "systemd-coredump",
    "_apt", "_chrony", "avahi", "dnsmasq", "tcpdump", "statd", "uuidd", "ntp", "postfix",
    "docker", "caddy", "restic", "wireguard",
})
MIN_RSA_BITS = 2048  # OpenSSH refuses smaller ones anyway (RequiredRSASize 1024); be stricter
PORT_RANGE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})$")


@dataclass(frozen=True)
class OperatorUser:
    """A person who logs in: exactly these keys, and sudo (without password) if asked."""

    name: str
    keys: tuple[str, ...] = ()  # OpenSSH public key lines, validated
    sudo: bool = False


@dataclass(frozen=True)
class SshdSettings:
    port: int = 22
    password_login: bool = False
    root_login: bool = False


@dataclass(frozen=True)
class AllowRule:
    """One extra inbound port (or range) to open, optionally only from one network."""

    port: int
    proto: str = "tcp"  # tcp | udp
    port_end: int | None = None  # a range port..port_end (`port: "8000-8100"`)
    source: str | None = None  # `from:` an IP network ("192.168.1.0/24"), normalized

    @property
    def ports(self) -> str:
        return f"{self.port}-{self.port_end}" if self.port_end else str(self.port)


@dataclass(frozen=True)
class FirewallSettings:
    enabled: bool = True
    allow: tuple[AllowRule, ...] = ()
    ingress_hosts: tuple[str, ...] = ()  # machines that serve 80/443 (tcp) and 443 (udp, HTTP/3)


@dataclass(frozen=True)
class PermissionsConfig:
    users: tuple[OperatorUser, ...] = ()
    sshd: SshdSettings = field(default_factory=SshdSettings)
    firewall: FirewallSettings = field(default_factory=FirewallSettings)
    unattended_upgrades: bool = True
    revert_after: int = DEFAULT_REVERT_AFTER

    @property
    def operator(self) -> OperatorUser | None:
        """The user homelab logs in as: the first one with sudo (None: keep the login user)."""
        return next((u for u in self.users if u.sudo), None)

    def cross_check(self, cfg: Any, root: Located, problems: Problems) -> None:
        """ingress_hosts must name machines or servers the config defines."""
        known = {m.name for m in getattr(cfg, "machines", ())}
        hetzner = getattr(getattr(cfg, "compute", None), "hetzner", None)
        known |= {getattr(s, "name", "") for s in getattr(hetzner, "servers", ()) or ()}
        node = _find(root, ["permissions", "firewall", "ingress_hosts"])
        items = node.value if node is not None and isinstance(node.value, list) else []
        for i, name in enumerate(self.firewall.ingress_hosts):
            if name not in known:
                at = items[i] if i < len(items) else node
                hint = f"known: {', '.join(sorted(known))}" if known else "define it under compute first"
                problems.add(at, f"permissions.firewall.ingress_hosts[{i}]", f"no machine or server named {name!r}",
                             hint)


def _find(root: Located, path: list[str]) -> Located | None:
    node: Located | None = root
    for key in path:
        if node is None or not isinstance(node.value, dict):
            return None
        node = node.value.get(key)
    return node


# ------------------------------------------------------------------ keys -----
# Words that start an OpenSSH public key line (the known_hosts/authorized_keys key types)
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
KEY_BLOB = re.compile(r"^AAAA[A-Za-z0-9+/]{40,}={0,2}$")  # base64 of a length-prefixed key type


def count_keys(text: str) -> int:
    """How many keys a string holds: a pasted authorized_keys file has several (any line breaks
    are gone once YAML folds it, so count key types and key blobs, not lines)."""
    words = text.split()
    return max(sum(w in KEY_TYPES for w in words), sum(bool(KEY_BLOB.match(w)) for w in words))


def check_public_key(line: str) -> str | None:
    """Why `line` is not a usable OpenSSH public key, or None if it is."""
    if count_keys(line) > 1:
        return f"holds {count_keys(line)} keys in one string"
    if not SSH_PUBKEY.match(line):
        return "is not an OpenSSH public key line ('ssh-ed25519 AAAA... comment')"
    kind, b64 = line.split()[:2]
    try:
        blob = base64.b64decode(b64, validate=True)
    except ValueError:
        return "has a broken base64 part"
    fields = _ssh_strings(blob)
    if not fields or fields[0] != kind.encode():
        return f"says {kind} but its key data is not a {kind} key"
    if kind == "ssh-rsa":
        if len(fields) < 3:
            return "has truncated RSA key data"
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < MIN_RSA_BITS:
            return f"is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are needed"
    invalid = f"has {kind} key data that is not a valid key (cut short or altered?)"
    if kind == "ssh-ed25519":
        # The common key, checked here as cryptography checks it (32 bytes, no more fields; it does not
        # test the curve point, nor does sshd on load), so a validate skips cryptography's ~20 ms import.
        return None if len(fields) == 2 and len(fields[1]) == 32 else invalid
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:  # the fields are there; now the key itself (an RSA modulus is odd, an ECDSA point lies on its curve)
        load_ssh_public_key(f"{kind} {b64}".encode())
    except (ValueError, UnsupportedAlgorithm):
        return invalid
    return None


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed fields of an SSH wire-format key blob ([] if malformed)."""
    out: list[bytes] = []
    i = 0
    while i < len(blob):
        if i + 4 > len(blob):
            return []
        (n,) = struct.unpack(">I", blob[i:i + 4])
        if i + 4 + n > len(blob):
            return []
        out.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    return out


def key_identity(line: str) -> tuple[str, str]:
    """Type and key data: two lines with different comments are the same key."""
    kind, b64 = line.split()[:2]
    return kind, b64


# ------------------------------------------------------------------ parse ----
def parse_user(sec: Section) -> OperatorUser | None:
    name = sec.text("name", required=True, pattern=USER, hint="a Unix user name like 'alice'")
    if name in RESERVED_USERS or (name or "").startswith(("systemd-", "_")):
        sec.fail(sec.raw("name"), sec.sub("name"), f"{name!r} is a system account",
                 "operator users are people; pick a personal name like 'alice'")
        name = None
    keys: list[str] = []
    seen: set[tuple[str, str]] = set()
    for item, path in sec.entries("keys"):
        v = item.value
        if not isinstance(v, str):
            sec.fail(item, path, "should be a string (an OpenSSH public key line)")
            continue
        v = " ".join(v.split())  # YAML folding can leave doubled spaces or a trailing newline
        why = check_public_key(v)
        if why:
            hint = "list each key as its own item under keys:" if count_keys(v) > 1 else \
                "paste the whole line of the .pub file, e.g. ~/.ssh/id_ed25519.pub"
            sec.fail(item, path, why, hint)
            continue
        if key_identity(v) in seen:
            sec.fail(item, path, "is listed twice for this user")
            continue
        seen.add(key_identity(v))
        keys.append(v)
    sudo = sec.flag("sudo", False)
    sec.done(["name", "keys", "sudo"])
    if not sec.ok or name is None:
        return None
    return OperatorUser(name=name, keys=tuple(keys), sudo=sudo)


def parse_sshd(sec: Section | None) -> SshdSettings:
    if sec is None:
        return SshdSettings()
    port = sec.integer("port", 22, lo=1, hi=65535)
    password = sec.flag("password_login", False)
    root = sec.flag("root_login", False)
    sec.done(["port", "password_login", "root_login"])
    return SshdSettings(port=port or 22, password_login=password, root_login=root)


def parse_allow(sec: Section) -> AllowRule | None:
    node = sec.raw("port")
    port: int | None = None
    end: int | None = None
    if node is None or node.value is None:
        sec.fail(sec.node, sec.sub("port"), "is required")
    elif isinstance(node.value, int) and not isinstance(node.value, bool) and 1 <= node.value <= 65535:
        port = node.value
    elif isinstance(node.value, str) and (m := PORT_RANGE.match(node.value)) and \
            1 <= int(m.group(1)) < int(m.group(2)) <= 65535:
        port, end = int(m.group(1)), int(m.group(2))
    else:
        sec.fail(node, sec.sub("port"), f"{show(node.value)} is not a port",
                 "an integer 1-65535, or a range like \"8000-8100\"")
    proto = sec.text("proto", "tcp", choices=("tcp", "udp"))
    source: str | None = None
    src = sec.text("from")
    if src is not None:
        try:
            source = str(ipaddress.ip_network(src, strict=False))
        except ValueError:
            sec.fail(sec.raw("from"), sec.sub("from"), f"{show(src)} is not an IP address or network",
                     "like 192.168.1.0/24, 10.0.0.5 or 2001:db8::/32")
    sec.done(["port", "proto", "from"])
    if not sec.ok or port is None:
        return None
    return AllowRule(port=port, proto=proto or "tcp", port_end=end, source=source)


def parse_firewall(sec: Section | None) -> FirewallSettings:
    if sec is None:
        return FirewallSettings()
    enabled = sec.flag("enabled", True)
    rules = [r for r in (parse_allow(s) for s in sec.items_of("allow")) if r is not None]
    ingress = sec.str_list("ingress_hosts", pattern=NAME, hint="a machine or server name")
    sec.done(["enabled", "allow", "ingress_hosts"])
    return FirewallSettings(enabled=enabled, allow=tuple(rules), ingress_hosts=tuple(dict.fromkeys(ingress)))


def parse_permissions(sec: Section) -> PermissionsConfig:
    before = len(sec.problems.items)
    users = sec.unique_items("users", parse_user, hint="list every user once")
    users_ok = len(sec.problems.items) == before  # else "needs sudo" may only follow from those errors
    sshd = parse_sshd(sec.section("sshd"))
    firewall = parse_firewall(sec.section("firewall"))
    upgrades = sec.flag("unattended_upgrades", True)
    revert_after = sec.integer("revert_after", DEFAULT_REVERT_AFTER, lo=10, hi=600)
    sec.done(["users", "sshd", "firewall", "unattended_upgrades", "revert_after"])
    cfg = PermissionsConfig(users=tuple(users), sshd=sshd, firewall=firewall, unattended_upgrades=upgrades,
                            revert_after=revert_after or DEFAULT_REVERT_AFTER)
    if sec.ok and users_ok and not sshd.root_login and cfg.operator is None:
        sec.fail(sec.raw("users") or sec.node, sec.sub("users"),
                 "root login is off, so one user needs sudo: true (homelab logs in as the first such user)",
                 "add `sudo: true` to your own user, or set sshd.root_login: true", key=True)
    return cfg


def permissions_claims(perm: PermissionsConfig, cfg: Any) -> Iterator[Claim]:
    """The config's own `firewall.allow` rules, on every host, as port claims.

    `ingress_hosts` opens 80/443 until the ingress layer (5) exists and claims them itself
    for the machines that run it; then this key goes away.
    And the packages of the layer's own tools, on every host: sudo (visudo), nftables,
    unattended-upgrades.
    """
    # netbase: /etc/protocols, without which nft cannot read "ipv6-icmp" (only a Recommends of
    # nftables, and compute installs without Recommends; Debian 12's minimal systems lack it)
    wanted = [p for p, want in (("sudo", any(u.sudo for u in perm.users)), ("nftables", perm.firewall.enabled),
                                ("netbase", perm.firewall.enabled), ("unattended-upgrades", perm.unattended_upgrades))
              if want]
    for host in cfg.host_names:
        for package in wanted:
            yield NeedsPackage("permissions", "permissions", host, package)
    if not perm.firewall.enabled:
        return
    for host in cfg.host_names:
        for i, name in enumerate(perm.firewall.ingress_hosts):
            if name == host:
                path = f"permissions.firewall.ingress_hosts[{i}]"
                for port in (80, 443):
                    yield OpenPort("permissions", path, host, "tcp", port, why="ingress", forwarded=True)
                yield OpenPort("permissions", path, host, "udp", 443, why="ingress HTTP/3", forwarded=True)
        for i, rule in enumerate(perm.firewall.allow):
            yield OpenPort("permissions", f"permissions.firewall.allow[{i}]", host, rule.proto, rule.port,
                           rule.port_end, rule.source, why=f"allow[{i}]", forwarded=True)
