"""`mesh:` (layer 1): the WireGuard network between every node, home NAT included.

    mesh:
      cidr: 10.100.0.0/24        # private IPv4 network the nodes get addresses from
      port: 51820                # UDP port WireGuard listens on (per node: nodes[].port)
      interface: wg0
      preshared_keys: false      # an extra symmetric key per pair (post-quantum hedge)
      keepalive: 25              # seconds; NAT'd nodes ping their public peers this often
      handshake_timeout: 180     # seconds without a handshake before a link is FAIL
      relay: web-1               # public node relaying NAT'd-to-NAT'd traffic (default: first public)
      nodes:                     # default: every compute machine and server
        - {name: web-1, endpoint: 203.0.113.7}
        - {name: pi-1}           # no endpoint: behind NAT, cannot be dialled

A node's `endpoint` is the address or DNS name the *other nodes* dial; `auto` means the
address homelab itself connects to (handy for cloud servers whose IP is known only once they
exist). Without `nodes`, every compute host is a node: cloud servers and machines with a
public address or a DNS name get `auto`, machines with a private address sit behind NAT.

The permissions layer reads `port`/`port_of`, `interface`, `cidr`, `accepts_inbound` and
`forwards` to open the firewall; nothing here touches a host.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from homelab.claims import Claim, NeedsPackage, OpenPort, TrustInterface

from homelab.config.reader import NAME, Problems, Section
from homelab.config.yamlpos import Located, locate, show
from homelab.hosts import LOCAL

AUTO = "auto"  # endpoint: the address homelab connects to
DEFAULT_CIDR = "10.100.0.0/24"
DEFAULT_PORT = 51820
DEFAULT_KEEPALIVE = 25  # s; below the ~30 s UDP timeout of common home routers
DEFAULT_HANDSHAKE_TIMEOUT = 180  # s; WireGuard drops a session 180 s after its handshake
# an interface name ends up in file names, unit names and shell commands: strict, <= 15 chars
INTERFACE = re.compile(r"^[a-z][a-z0-9]{0,14}$")


@dataclass(frozen=True)
class MeshNode:
    name: str
    endpoint: str | None = None  # address/DNS name others dial, AUTO, or None: behind NAT
    port: int = DEFAULT_PORT  # UDP port this node listens on

    @property
    def public(self) -> bool:
        return self.endpoint is not None


@dataclass(frozen=True)
class MeshConfig:
    cidr: str = DEFAULT_CIDR
    port: int = DEFAULT_PORT
    interface: str = "wg0"
    preshared_keys: bool = False
    keepalive: int = DEFAULT_KEEPALIVE
    handshake_timeout: int = DEFAULT_HANDSHAKE_TIMEOUT
    relay: str | None = None
    nodes: tuple[MeshNode, ...] = ()  # as written; empty = every compute host
    # every compute host, filled in by cross_check (which alone sees the compute section)
    default_nodes: tuple[MeshNode, ...] = field(default=(), init=False, compare=False)

    @property
    def members(self) -> tuple[MeshNode, ...]:
        """The nodes of the mesh, in config order."""
        return self.nodes or self.default_nodes

    def node(self, name: str) -> MeshNode | None:
        return next((n for n in self.members if n.name == name), None)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)

    def port_of(self, host_name: str) -> int:
        node = self.node(host_name)
        return node.port if node else self.port

    def accepts_inbound(self, host_name: str) -> bool:
        """Whether other nodes dial this host (its WireGuard UDP port must be open)."""
        node = self.node(host_name)
        return node is not None and node.public

    def relay_node(self) -> str | None:
        """The public node that forwards traffic between NAT'd nodes (None: not needed)."""
        public = [n.name for n in self.members if n.public]
        natted = [n.name for n in self.members if not n.public]
        if len(natted) < 2 or not public:
            return None
        return self.relay if self.relay in public else public[0]

    def forwards(self, host_name: str) -> bool:
        """Whether this host forwards mesh traffic (wg0 -> wg0): only the relay does."""
        return self.relay_node() == host_name

    def cross_check(self, cfg: Any, root: Located, problems: Problems) -> None:
        """Node names must be compute hosts; NAT'd nodes need a public node to meet at."""
        compute = cfg.compute
        hosts: dict[str, MeshNode] = {}
        local = {m.name for m in compute.machines if m.address == LOCAL}
        for m in compute.machines:
            hosts[m.name] = MeshNode(m.name, default_endpoint(m.address), self.port)
        for s in getattr(getattr(compute, "hetzner", None), "servers", ()) or ():
            hosts[s.name] = MeshNode(s.name, AUTO, self.port)  # cloud servers have a public IPv4
        object.__setattr__(self, "default_nodes", tuple(hosts.values()))
        sec = root.value.get("mesh") if isinstance(root.value, dict) else None
        nodes_at = _child(sec, "nodes")
        for i, node in enumerate(self.nodes):
            if node.name not in hosts:
                at = _child(_item(nodes_at, i), "name")
                close = [n for n in hosts if _similar(n, node.name)]
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"compute hosts: {', '.join(hosts) or 'none (add compute.machines)'}"
                problems.add(at, f"mesh.nodes[{i}].name", f"{node.name!r} is not a compute machine or server", hint)
            elif node.endpoint == AUTO and node.name in local:
                problems.add(_child(_item(nodes_at, i), "endpoint"), f"mesh.nodes[{i}].endpoint",
                             f"endpoint auto means the address homelab connects to, and {node.name} is local",
                             "write the public address or DNS name the other nodes dial")
        members = self.members
        if self.relay is not None and self.relay not in {n.name for n in members if n.public}:
            problems.add(_child(sec, "relay"), "mesh.relay", f"{self.relay!r} is not a mesh node with an endpoint",
                         "the relay must be reachable by every NAT'd node")
        if len(members) > 1 and not any(n.public for n in members):
            problems.add(sec, "mesh", "no node has an endpoint, so no two nodes can ever meet",
                         "list the nodes under mesh.nodes and give the reachable ones an endpoint", key=True)
        net = self.network
        if net.num_addresses - 2 < len(members):
            problems.add(_child(sec, "cidr"), "mesh.cidr", f"{self.cidr} has room for {net.num_addresses - 2} "
                         f"nodes, the mesh has {len(members)}", "use a larger network such as a /24")
        self._check_overlaps(cfg, root, problems)

    def _check_overlaps(self, cfg: Any, root: Located, problems: Problems) -> None:
        """The mesh range must be nobody else's: a machine in it would be routed into the tunnel,
        and a firewall rule for a LAN that contains it would let every mesh node in as well."""
        net = self.network
        taken = [n for _, n in machine_networks(cfg.compute.machines)]
        for name, lan in machine_networks(cfg.compute.machines):
            if lan.overlaps(net):
                inside = lan.num_addresses == 1
                where = f"holds the address of machine '{name}' ({lan.network_address})" if inside else \
                    f"overlaps {lan}, the network of machine '{name}' ({_host_of(cfg, name)}, taken as a /24)"
                problems.add(locate(root, "mesh.cidr"), "mesh.cidr", f"{self.cidr} {where}",
                             f"pick a range no network of yours uses, e.g. {free_range(net.prefixlen, taken)}")
                return  # one is enough to show the clash; the same fix solves the rest
        perms = cfg.get("permissions") if hasattr(cfg, "get") else None
        for i, rule in enumerate(getattr(getattr(perms, "firewall", None), "allow", ()) or ()):
            if rule.source is None:
                continue
            src = ipaddress.ip_network(rule.source)
            if src.version == 4 and src.overlaps(net) and not src.subnet_of(net):
                path = f"permissions.firewall.allow[{i}].from"
                problems.add(locate(root, path), path,
                             f"{src} also contains the mesh range {net}, so every mesh node would be let in too",
                             f"narrow the rule, or move the mesh (e.g. mesh.cidr: {free_range(net.prefixlen, [src])}); "
                             f"to let mesh nodes in, write from: {net}")


def machine_networks(machines: Any) -> list[tuple[str, ipaddress.IPv4Network]]:
    """Each machine's IPv4 network as far as the config shows it: a private address stands for
    its home LAN, taken as the /24 around it (what home routers hand out); a public one for itself."""
    out: list[tuple[str, ipaddress.IPv4Network]] = []
    for m in machines:
        try:
            ip = ipaddress.ip_address(m.address)
        except ValueError:
            continue  # a DNS name: its address is not known here
        if ip.version != 4 or ip.is_loopback:
            continue  # loopback (a server provisioning itself) is never routed into the mesh
        out.append((m.name, ipaddress.IPv4Network(f"{ip}/32")))
        if ip.is_private:
            out.append((m.name, ipaddress.IPv4Network(f"{ip}/24", strict=False)))
    out.sort(key=lambda item: -item[1].prefixlen)  # "holds the address" before "overlaps the LAN"
    return out


def free_range(prefixlen: int, taken: list[Any]) -> str:
    """A private range of this size (/16 at most) that overlaps none of `taken` (for a hint)."""
    starts = [f"10.{n}.0.0" for n in range(100, 256)] + [f"172.{n}.0.0" for n in range(16, 32)] + \
        [f"192.168.{n}.0" for n in range(100, 256)]
    for start in starts:
        size = max(prefixlen, 24 if start.startswith("192.168.") else 16)
        cand = ipaddress.IPv4Network(f"{start}/{size}", strict=False)
        if not any(cand.overlaps(t) for t in taken if t.version == 4):
            return str(cand)
    return "a private range of your choice"


def _host_of(cfg: Any, name: str) -> str:
    return next((m.address for m in cfg.compute.machines if m.name == name), name)


def default_endpoint(address: str) -> str | None:
    """A machine found at a public IP or a DNS name is dialled there; a private IP is behind NAT,
    and so is `address: local` (the machine homelab runs on: nobody else can dial "local")."""
    if address == LOCAL:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return AUTO  # a DNS name: whoever resolves it reaches it
    return AUTO if ip.is_global else None


def _child(node: Located | None, key: str) -> Located | None:
    if node is None or not isinstance(node.value, dict):
        return node
    found = node.value.get(key)
    return found if isinstance(found, Located) else node


def _item(node: Located | None, i: int) -> Located | None:
    if node is None or not isinstance(node.value, list) or i >= len(node.value):
        return node
    item = node.value[i]
    return item if isinstance(item, Located) else node


def _similar(a: str, b: str) -> bool:
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.6


def parse_cidr(sec: Section) -> str:
    raw = sec.text("cidr", DEFAULT_CIDR) or DEFAULT_CIDR
    try:
        net = ipaddress.IPv4Network(raw, strict=True)
    except ValueError:
        try:  # host bits set, e.g. 10.100.0.1/24: say which network was meant
            hint = f"did you mean {ipaddress.IPv4Network(raw, strict=False)}?"
        except ValueError:
            hint = "like 10.100.0.0/24"
        sec.fail(sec.raw("cidr"), sec.sub("cidr"), f"{show(raw)} is not an IPv4 network", hint)
        return DEFAULT_CIDR
    if not net.is_private or net.prefixlen > 30 or net.prefixlen < 8:
        sec.fail(sec.raw("cidr"), sec.sub("cidr"), f"{raw} should be a private network of size /8 to /30",
                 "like 10.100.0.0/24 (it must not clash with your LAN)")
        return DEFAULT_CIDR
    return str(net)


def parse_node(sec: Section, default_port: int) -> MeshNode | None:
    name = sec.text("name", required=True, pattern=NAME, hint="the name of a compute machine or server")
    endpoint: str | None = None
    if sec.has("endpoint") and sec.items["endpoint"].value == AUTO:
        sec.raw("endpoint")
        endpoint = AUTO
    else:
        endpoint = sec.address("endpoint")
    port = sec.integer("port", default_port, lo=1, hi=65535)
    sec.done(["name", "endpoint", "port"])
    if not sec.ok or name is None:
        return None
    return MeshNode(name, endpoint, port or default_port)


def parse_mesh(sec: Section) -> MeshConfig:
    cidr = parse_cidr(sec)
    port = sec.integer("port", DEFAULT_PORT, lo=1, hi=65535) or DEFAULT_PORT
    interface = sec.text("interface", "wg0", pattern=INTERFACE,
                        hint="lowercase letters and digits, up to 15, like wg0") or "wg0"
    psk = sec.flag("preshared_keys", False)
    keepalive = sec.integer("keepalive", DEFAULT_KEEPALIVE, lo=1, hi=3600) or DEFAULT_KEEPALIVE
    timeout = sec.integer("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT, lo=1, hi=86400) or DEFAULT_HANDSHAKE_TIMEOUT
    relay = sec.text("relay", pattern=NAME, hint="the name of a mesh node with an endpoint")
    nodes = sec.unique_items("nodes", lambda nsec: parse_node(nsec, port), hint="list every node once")
    sec.done(["cidr", "port", "interface", "preshared_keys", "keepalive", "handshake_timeout", "relay", "nodes"])
    return MeshConfig(cidr=cidr, port=port, interface=interface, preshared_keys=psk, keepalive=keepalive,
                      handshake_timeout=timeout, relay=relay, nodes=tuple(nodes))


# wireguard-tools everywhere (wg, wg-quick), ping for the status checks; wireguard-go only where
# the kernel has no module (built in, loaded or loadable): containers, some VPS kernels
PACKAGES = ("wireguard-tools", "iputils-ping")
USERSPACE_PACKAGE = "wireguard-go"
NO_KERNEL_MODULE = "! [ -d /sys/module/wireguard ] && ! modprobe -n -q wireguard"


def mesh_claims(mesh: MeshConfig, cfg: Any) -> Iterator[Claim]:
    """What the mesh needs of the firewall: its UDP port on nodes others dial, and trust of
    what arrives on the mesh interface (authenticated by WireGuard already); and its packages."""
    listed = {n.name: i for i, n in enumerate(mesh.nodes)}
    for node in mesh.members:
        i = listed.get(node.name)
        for package in PACKAGES:
            yield NeedsPackage("mesh", "mesh.nodes", node.name, package)
        yield NeedsPackage("mesh", "mesh.nodes", node.name, USERSPACE_PACKAGE, only_if=NO_KERNEL_MODULE)
        if mesh.accepts_inbound(node.name):
            path = f"mesh.nodes[{i}].port" if i is not None and node.port != mesh.port else "mesh.port"
            yield OpenPort("mesh", path, node.name, "udp", node.port, why="WireGuard mesh")
        yield TrustInterface("mesh", "mesh.interface", node.name, mesh.interface, why="mesh")
