"""What the mesh layer reads on each node, batched into the engine's one command per host.

Nothing secret comes back: the private key is only ever fed to `wg pubkey`, wg0.conf is read
with any PrivateKey/PresharedKey line masked on the node, and preshared keys are compared by
a short hash computed on the node. The one exception is `psk_read_probe`: it returns the
preshared keys a peer still lacks, only when a plan asked for them, and the layer wraps each
in a Secret (redacted everywhere) the moment it is parsed.

Pings run before `wg show`, so a ping that needs a fresh handshake is reflected in the
handshake times read right after it. Only `status` pings: plan and apply never read the
round trips, and a full mesh of n nodes pings n*(n-1) times through WireGuard (in the lab the
largest share of a no-op's remote CPU at 10 hosts).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.config.mesh import PACKAGES as CLAIMED, USERSPACE_PACKAGE
from homelab.layers.mesh.keys import PRIVATE_KEY, PSK_DIR, is_key, psk_path
from homelab.probe import AnyProbe, ProbeResult, packages, parse_packages, parse_unit_states, unit_states

PACKAGES = (CLAIMED[0], USERSPACE_PACKAGE, *CLAIMED[1:])  # the mesh's package claims, as the probe reads them
MISSING_CONF = 3  # exit status of the conf probe when there is no wg0.conf
MASKED = "(secret, not read)"
HASH = "sha256sum | cut -c1-16"  # 64 bits: plenty to compare two keys, says nothing about them


def conf_path(interface: str) -> str:
    return f"/etc/wireguard/{interface}.conf"


def unit_name(interface: str) -> str:
    return f"wg-quick@{interface}"


def host_probe(interface: str) -> str:
    """The key, the kernel module, the preshared keys (its packages and unit: `mesh_probes`)."""
    return "\n".join([
        # built in or loaded, loadable, or neither (containers, some VPS kernels): wireguard-go
        "if [ -d /sys/module/wireguard ]; then echo kernel loaded; "
        "elif modprobe -n -q wireguard 2>/dev/null; then echo kernel available; else echo kernel none; fi",
        f"f={PRIVATE_KEY}",
        'if [ -s "$f" ]; then echo "keymode $(stat -c %a "$f")"; echo "pubkey $(wg pubkey < "$f" 2>/dev/null)"; fi',
        # `read` and `printf` are shell builtins: the key is in no process argument
        f'for f in {PSK_DIR}/*.psk; do [ -f "$f" ] || continue; k=; read -r k < "$f" || true; '
        f'n=${{f##*/}}; echo "psk ${{n%.psk}} $(printf %s "$k" | {HASH})"; done',
        "true",
    ])


def conf_probe(interface: str) -> str:
    path = shlex.quote(conf_path(interface))
    return (f"[ -f {path} ] || exit {MISSING_CONF}\n"
            f"sed -E 's/^([[:space:]]*(PrivateKey|PresharedKey)[[:space:]]*=).*$/\\1 {MASKED}/I' {path}")


def ping_probe(interface: str, addresses: Sequence[str]) -> str:
    """One ping per other node, in parallel (a dead peer costs 3 s once, not once each).

    `-c 1 -w 3 -i 0.5`: up to 6 tries for one reply, so a first packet lost to a session being
    replaced (a peer just restarted or rotated) does not count as a dead link."""
    if not addresses:
        return "true"
    addrs = " ".join(shlex.quote(a) for a in addresses)
    return (f"[ -d /sys/class/net/{shlex.quote(interface)} ] || exit 0\n"
            f"for a in {addrs}; do ( r=$(ping -n -q -c 1 -w 3 -i 0.5 \"$a\" 2>/dev/null "
            "| sed -n 's|^rtt [^=]*= [0-9.]*/\\([0-9.]*\\)/.*|\\1|p'); echo \"ping $a ${r:--}\" ) & done; wait")


def runtime_probe(interface: str) -> str:
    """The live interface from ONE `wg show dump` (it was six `wg show`s, an `ip`, two seds),
    split with shell builtins. The dump's first line holds the private key and each peer line
    its preshared key: the shell keeps them in memory, only public fields and a short hash of
    each preshared key are printed (printf is a builtin: no key is a process argument)."""
    i = shlex.quote(interface)
    return "\n".join([
        'echo "now $(date +%s)"',
        f"dump=$(wg show {i} dump 2>/dev/null) || exit 0",
        f'fwd=; read -r fwd < /proc/sys/net/ipv4/conf/{i}/forwarding 2>/dev/null; echo "fwd $fwd"',
        # a kernel interface says DEVTYPE=wireguard in its uevent; wireguard-go's is a tun device
        f"impl=userspace; while IFS= read -r l; do [ \"$l\" = DEVTYPE=wireguard ] && impl=kernel; done "
        f"< /sys/class/net/{i}/uevent 2>/dev/null; echo \"impl $impl\"",
        'first=1; printf \'%s\\n\' "$dump" | while IFS="\t" read -r pub psk b ips hs c; do',
        '  if [ -n "$first" ]; then echo "pub $psk"; echo "port $b"; first=; continue; fi',
        '  echo "hs $pub $hs"; echo "ips $pub $ips"',
        f'  if [ "$psk" = "(none)" ]; then echo "rpsk $pub -"; else echo "rpsk $pub $(printf %s "$psk" | {HASH})"; fi',
        "done",
    ])


def psk_read_probe(peers: Sequence[str]) -> str:
    """The preshared keys this node owns with `peers` (asked for only when a peer lacks one)."""
    files = " ".join(shlex.quote(psk_path(p)) for p in peers)
    return (f'for f in {files}; do [ -s "$f" ] || continue; k=; read -r k < "$f" || true; '
            'n=${f##*/}; echo "psk ${n%.psk} $k"; done; true')


def mesh_probes(interface: str, ping_addresses: Sequence[str], psk_reads: Sequence[str] = ()) -> dict[str, AnyProbe]:
    """The node's probes; `ping_addresses` empty: no ping probe (plan and apply). Its packages
    and its unit are batched questions: the engine asks dpkg and systemctl once per host."""
    probes: dict[str, AnyProbe] = {"mesh.host": host_probe(interface), "mesh.packages": packages(PACKAGES),
                                   "mesh.unit": unit_states([unit_name(interface)]), "mesh.conf": conf_probe(interface)}
    if ping_addresses:
        probes["mesh.ping"] = ping_probe(interface, ping_addresses)
    probes["mesh.wg"] = runtime_probe(interface)
    if psk_reads:
        probes["mesh.psk_read"] = psk_read_probe(psk_reads)
    return probes


# ---------------------------------------------------------------- parsing ----

@dataclass(frozen=True)
class Running:
    """The live interface (`wg show`)."""

    now: int  # the node's clock, epoch seconds: handshake ages use it, not ours
    public_key: str
    listen_port: int
    forwarding: bool
    implementation: str  # kernel | userspace
    handshakes: Mapping[str, int] = field(default_factory=dict)  # peer public key -> epoch s (0: never)
    allowed_ips: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    psk_hashes: Mapping[str, str] = field(default_factory=dict)  # peer public key -> hash, "-": none


@dataclass(frozen=True)
class NodeFacts:
    packages: frozenset[str] = frozenset()
    kernel: str = "none"  # loaded | available | none
    key_mode: str | None = None
    public_key: str | None = None  # of /etc/wireguard/private.key; None: there is no key
    unit_enabled: bool = False
    unit_active: bool = False
    conf: str | None = None  # wg0.conf as it is (secret lines masked); None: no file
    psk_hashes: Mapping[str, str] = field(default_factory=dict)  # peer name -> hash of the file
    pings: Mapping[str, float | None] = field(default_factory=dict)  # mesh address -> rtt ms
    running: Running | None = None
    now: int | None = None

    @property
    def kernel_module(self) -> bool:
        return self.kernel != "none"

    @property
    def backend(self) -> str:
        if self.running is not None:
            return "kernel module" if self.running.implementation == "kernel" else "wireguard-go (userspace)"
        return "kernel module" if self.kernel_module else "wireguard-go (userspace)"


def _pairs(result: ProbeResult | None) -> list[list[str]]:
    return [ln.split() for ln in result.lines()] if result is not None else []


def parse_facts(probed: Mapping[str, ProbeResult]) -> NodeFacts:
    packages: set[str] = set()
    kernel, key_mode, public_key, enabled, active = "none", None, None, False, False
    psk: dict[str, str] = {}
    if "mesh.packages" in probed:
        versions = parse_packages(probed["mesh.packages"])
        packages = {name for name in PACKAGES if versions.get(name)}
    for parts in _pairs(probed.get("mesh.host")):
        tag, rest = parts[0], parts[1:]
        if tag == "kernel" and rest:
            kernel = rest[0]
        elif tag == "keymode" and rest:
            key_mode = rest[0]
        elif tag == "pubkey" and rest and is_key(rest[0]):
            public_key = rest[0]
        elif tag == "psk" and len(rest) == 2:
            psk[rest[0]] = rest[1]
    # the one answer of the host's batched unit question: ours is the wg-quick instance
    units = parse_unit_states(probed["mesh.unit"]) if "mesh.unit" in probed else {}
    for unit, (enabled_state, active_state) in units.items():
        if unit.startswith("wg-quick@"):
            enabled, active = enabled_state == "enabled", active_state == "active"
    conf_res = probed.get("mesh.conf")
    conf = conf_res.out + "\n" if conf_res is not None and conf_res.ok else None
    pings: dict[str, float | None] = {}
    for parts in _pairs(probed.get("mesh.ping")):
        if parts[0] == "ping" and len(parts) == 3:
            try:
                pings[parts[1]] = float(parts[2])
            except ValueError:
                pings[parts[1]] = None
    running, now = _parse_running(probed.get("mesh.wg"))
    return NodeFacts(frozenset(packages), kernel, key_mode, public_key, enabled, active, conf, psk, pings,
                     running, now)


def _parse_running(result: ProbeResult | None) -> tuple[Running | None, int | None]:
    now: int | None = None
    pub, port, fwd, impl = None, 0, False, "userspace"
    hs: dict[str, int] = {}
    ips: dict[str, tuple[str, ...]] = {}
    rpsk: dict[str, str] = {}
    for parts in _pairs(result):
        tag, rest = parts[0], parts[1:]
        if tag == "now" and rest and rest[0].isdigit():
            now = int(rest[0])
        elif tag == "pub" and rest:
            pub = rest[0]
        elif tag == "port" and rest and rest[0].isdigit():
            port = int(rest[0])
        elif tag == "fwd":
            fwd = rest[:1] == ["1"]
        elif tag == "impl" and rest:
            impl = rest[0]
        elif tag == "hs" and len(rest) == 2 and rest[1].isdigit():
            hs[rest[0]] = int(rest[1])
        elif tag == "ips" and rest:  # the dump joins them with commas
            ips[rest[0]] = tuple(sorted(x for x in ",".join(rest[1:]).split(",") if x and x != "(none)"))
        elif tag == "rpsk" and len(rest) == 2:
            rpsk[rest[0]] = rest[1]
    if pub is None:
        return None, now
    return Running(now or 0, pub, port, fwd, impl, hs, ips, rpsk), now


def parse_psk_reads(result: ProbeResult | None) -> dict[str, str]:
    """peer name -> preshared key (the caller wraps each in a Secret at once)."""
    out: dict[str, str] = {}
    for parts in _pairs(result):
        if parts[0] == "psk" and len(parts) == 3 and is_key(parts[2]):
            out[parts[1]] = parts[2]
    return out
