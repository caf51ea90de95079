"""The mesh diff: wanted (config + state + topology) vs what the nodes showed -> changes. Pure.

Keys are made on the nodes, so a fresh mesh cannot be planned in one go: a node's wg0.conf
needs its peers' public keys, which exist only once their keys are generated. Such changes
are planned *deferred* (no operations yet; the plan still shows them), and the layer asks the
engine for another pass, which reads the new public keys back and plans them for real. The
same goes for a preshared key a node lacks: the pass after next reads it from the node that
made it (`psk_reads`) and copies it over.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Mapping

from homelab.layers.mesh.keys import PRIVATE_KEY, generate_private_key_command, generate_psk_command, \
    psk_owner, psk_path
from homelab.layers.mesh.probes import PACKAGES, NodeFacts, conf_path, unit_name
from homelab.layers.mesh.render import Interface, render_sync_script, render_wg_conf
from homelab.layers.mesh.topology import Node, peers_of
from homelab.model import Change, LayerPlan, Op
from homelab.secrets import Secret, SecretText

LAYER = "mesh"


@dataclass(frozen=True)
class MeshInputs:
    interface: str
    prefixlen: int
    nodes: tuple[Node, ...]
    relay: str | None
    keepalive: int
    preshared_keys: bool
    facts: Mapping[str, NodeFacts]  # live nodes only (probed in this run)
    known_keys: Mapping[str, str] = field(default_factory=dict)  # state: node -> public key
    rotate: frozenset[str] = frozenset()  # nodes whose key is replaced in this apply
    psk_values: Mapping[tuple[str, str], Secret] = field(default_factory=dict)  # (owner, peer) -> key


@dataclass(frozen=True)
class MeshPlan:
    plan: LayerPlan
    psk_reads: Mapping[str, tuple[str, ...]]  # owner -> peers whose preshared key the next pass reads


def is_deferred(change: Change) -> bool:
    """Planned, but its operations can only be written in a later pass of the same apply."""
    return bool(change.deferred)


def _deferred(host: str, action: str, summary: str, why: str = "needs the keys generated above") -> Change:
    return Change(LAYER, host, action, summary, host=host, deferred=why)


def _shell(host: str, action: str, summary: str, command: str) -> Change:
    return Change(LAYER, host, action, summary, ops=(Op("server.shell", {"commands": [command]}),), host=host)


def wanted_packages(facts: NodeFacts) -> list[str]:
    """wireguard-tools everywhere; wireguard-go only where the kernel has no module."""
    want = ["wireguard-tools", "iputils-ping"]
    if not facts.kernel_module:
        want.insert(1, "wireguard-go")
    return [p for p in want if p in PACKAGES]


def _address_line(conf: str | None) -> str | None:
    for line in (conf or "").splitlines():
        if line.replace(" ", "").lower().startswith("address="):
            return line.split("=", 1)[1].strip()
    return None


class _Planner:
    def __init__(self, inp: MeshInputs) -> None:
        self.inp = inp
        self.changes: list[Change] = []
        self.same: list[str] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []
        self.psk_reads: dict[str, list[str]] = {}
        self.by_name = {n.name: n for n in inp.nodes}

    # a node's public key as its peers will know it after this pass, or why it is not known
    def key_of(self, name: str) -> str | None:
        facts = self.inp.facts.get(name)
        if facts is None:
            return self.inp.known_keys.get(name)  # not reachable now: its last known key
        if name in self.inp.rotate or facts.public_key is None:
            return None  # being generated in this pass
        return facts.public_key

    def pending(self, name: str) -> bool:
        return name in self.inp.facts and self.key_of(name) is None

    def run(self) -> MeshPlan:
        for node in self.inp.nodes:
            if node.name not in self.inp.facts:
                if node.name in self.inp.known_keys:
                    self.warnings.append(f"{node.name}: not reachable; its peers keep its last known key")
                else:
                    self.warnings.append(f"{node.name}: not reachable and has no key yet; "
                                         "left out of the mesh until an apply reaches it")
                continue
            self.plan_node(node, self.inp.facts[node.name])
        plan = LayerPlan(LAYER, tuple(self.changes), tuple(self.same), tuple(self.warnings), notes=tuple(self.notes))
        return MeshPlan(plan, {k: tuple(v) for k, v in self.psk_reads.items()})

    def plan_node(self, node: Node, facts: NodeFacts) -> None:
        n = node.name
        inp = self.inp
        missing = [p for p in wanted_packages(facts) if p not in facts.packages]
        if missing:  # the mesh's package claims: compute installs them before this layer runs
            self.notes.append(f"{n}: {', '.join(missing)} not installed yet (compute's package step installs them)")
        else:
            self.same.append(f"{n}: WireGuard installed ({facts.backend})")
        if n in inp.rotate:
            self.changes.append(_shell(n, "update", f"rotate the WireGuard key (made on {n}, never copied off)",
                                       generate_private_key_command(replace=True)))
        elif facts.public_key is None:
            self.changes.append(_shell(n, "create", f"generate a WireGuard key (on {n}, never copied off)",
                                       generate_private_key_command()))
        elif facts.key_mode != "600":
            self.changes.append(_shell(n, "update", f"{PRIVATE_KEY}: mode {facts.key_mode} -> 600",
                                       f"chmod 600 {PRIVATE_KEY}"))
        else:
            self.same.append(f"{n}: has its key ({facts.public_key[:8]}...)")

        peers = peers_of(node, inp.nodes, inp.keepalive, inp.relay)
        known = [p for p in peers if not (p.name not in inp.facts and p.name not in inp.known_keys)]
        waiting = [p.name for p in known if self.pending(p.name)]
        psk_changed = self.plan_psks(n, facts, [p.name for p in known]) if inp.preshared_keys else False
        if waiting:
            self.changes.append(_deferred(n, "create" if facts.conf is None else "update",
                                          f"{conf_path(inp.interface)}: peers {', '.join(p.name for p in known)}"))
            self.changes.append(self._deferred_runtime(n, facts))
            return
        keys = {p.name: self.key_of(p.name) or "" for p in known}
        iface = Interface(inp.interface, node, inp.prefixlen, tuple(known), keys, inp.preshared_keys, inp.relay == n)
        text = render_wg_conf(iface)
        conf_changed = facts.conf != text
        path = conf_path(inp.interface)
        if conf_changed:
            # an update shows its diff (no secret is ever in this file); a new file just its peers
            detail = () if facts.conf is None else tuple(ln.rstrip("\n") for ln in difflib.unified_diff(
                facts.conf.splitlines(True), text.splitlines(True), "now", "wanted", n=0))[2:]
            self.changes.append(Change(
                LAYER, n, "create" if facts.conf is None else "update",
                f"{path}: {len(known)} peer(s) ({', '.join(p.name for p in known) or 'none'})",
                ops=(Op("files.put_text", {"content": text, "dest": path, "mode": "600", "user": "root",
                                           "group": "root"}),), host=n, detail=detail))
        else:
            self.same.append(f"{n}: {path} is up to date ({len(known)} peer(s))")
        if psk_changed is None:
            self.changes.append(self._deferred_runtime(n, facts))
            return
        self.plan_runtime(node, facts, iface, text, conf_changed or psk_changed)

    def plan_psks(self, n: str, facts: NodeFacts, peers: list[str]) -> bool | None:
        """Preshared keys of `n`: generate the ones it owns, copy the others in.
        True: a key file changed; None: a copy waits for the next pass."""
        inp = self.inp
        own = [p for p in peers if psk_owner(n, p) == n and p not in facts.psk_hashes]
        changed: bool | None = False
        if own:
            self.changes.append(_shell(n, "create", f"generate preshared keys shared with {', '.join(own)} (on {n})",
                                       generate_psk_command(own)))
            changed = True
        for p in peers:
            owner = psk_owner(n, p)
            if owner == n:
                continue
            owner_facts = inp.facts.get(owner)
            if owner_facts is None:
                if p not in facts.psk_hashes:
                    self.warnings.append(f"{n}: no preshared key with {p} yet ({p} is not reachable)")
                continue
            theirs = owner_facts.psk_hashes.get(n)
            if theirs is not None and facts.psk_hashes.get(p) == theirs:
                continue
            secret = inp.psk_values.get((owner, n))
            action = "update" if p in facts.psk_hashes else "create"
            if theirs is None or secret is None:
                self.changes.append(_deferred(n, action, f"{psk_path(p)}: copy the preshared key from {owner}",
                                              f"reads it from {owner} first"))
                self.psk_reads.setdefault(owner, []).append(n)
                changed = None
                continue
            self.changes.append(Change(LAYER, n, action, f"{psk_path(p)}: the preshared key made on {owner}", ops=(
                Op("files.directory", {"path": psk_path(p).rsplit("/", 1)[0], "mode": "700"}),
                Op("files.put_text", {"content": SecretText(secret, "\n"), "dest": psk_path(p), "mode": "600",
                                      "user": "root", "group": "root"})), host=n))
            if changed is not None:
                changed = True
        return changed

    def _deferred_runtime(self, n: str, facts: NodeFacts) -> Change:
        if not facts.unit_active or facts.running is None:
            return _deferred(n, "create", f"start {unit_name(self.inp.interface)} (and at every boot)")
        return _deferred(n, "update", f"bring the running {self.inp.interface} up to date")

    def plan_runtime(self, node: Node, facts: NodeFacts, iface: Interface, text: str, files_changed: bool) -> None:
        """Start, restart or live-sync the interface so it runs what the files say."""
        n = node.name
        inp = self.inp
        unit = unit_name(inp.interface)
        run = facts.running
        if not facts.unit_active or run is None:
            self.changes.append(Change(LAYER, n, "create", f"start {unit} (and at every boot)", ops=(
                Op("systemd.service", {"service": unit, "running": True, "enabled": True, "restarted": True}),),
                host=n))
            return
        if not facts.unit_enabled:
            self.changes.append(Change(LAYER, n, "update", f"start {unit} at every boot", ops=(
                Op("systemd.service", {"service": unit, "enabled": True}),), host=n))
        if _address_line(facts.conf) != _address_line(text):
            self.changes.append(Change(LAYER, n, "update", f"restart {unit}: its address changed", ops=(
                Op("systemd.service", {"service": unit, "running": True, "restarted": True}),), host=n))
            return
        drift = self.drift(node, facts, iface)
        if files_changed or drift:
            why = "; ".join(drift) if drift and not files_changed else "peers changed"
            psk_files = {iface.public_keys[p.name]: psk_path(p.name) for p in iface.peers}
            script = render_sync_script(inp.interface, [iface.public_keys[p.name] for p in iface.peers],
                                        inp.preshared_keys, psk_files, iface.forward)
            self.changes.append(_shell(n, "update", f"apply to the running {inp.interface} with wg syncconf "
                                       f"(tunnels stay up): {why}", script))
        else:
            self.same.append(f"{n}: {inp.interface} runs its config ({facts.backend})")

    def drift(self, node: Node, facts: NodeFacts, iface: Interface) -> list[str]:
        """Differences between the running interface and what its files say."""
        run = facts.running
        assert run is not None
        out: list[str] = []
        if facts.public_key and run.public_key != facts.public_key:
            out.append("it runs an old key")
        if run.listen_port != node.port:
            out.append(f"it listens on {run.listen_port}, not {node.port}")
        want = {iface.public_keys[p.name]: tuple(sorted(p.allowed_ips)) for p in iface.peers}
        if dict(run.allowed_ips) != want:
            out.append("its peers differ")
        if self.inp.preshared_keys:
            for p in iface.peers:
                have = run.psk_hashes.get(iface.public_keys[p.name])
                if have is not None and have != facts.psk_hashes.get(p.name):
                    out.append(f"its preshared key with {p.name} differs")
                    break
        elif any(h != "-" for h in run.psk_hashes.values()):
            out.append("it still uses preshared keys")
        if iface.forward and not run.forwarding:
            out.append("it does not forward for the NAT'd nodes")
        return out


def plan_mesh(inp: MeshInputs) -> MeshPlan:
    return _Planner(inp).run()
