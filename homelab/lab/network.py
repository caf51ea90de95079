"""Lab networking: a private bridge, one network namespace per host, an nft guard.

Nothing from the lab may reach anything but its bridge: hosts get no default route, and
the guard table drops whatever is forwarded from a lab bridge to another interface.
Every function takes the bridge/subnet it works on, so a second bridge (e.g. hosts behind a
NAT router host) can reuse them.
"""
from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Sequence

from homelab.lab.system import run


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def links_with_prefix(prefix: str) -> list[str]:
    out = run(["ip", "-j", "link", "show"], what="list links").stdout
    return [link["ifname"] for link in json.loads(out or "[]") if link["ifname"].startswith(prefix)]


def bridge_up(bridge: str, address: IPv4Interface) -> None:
    """Create the bridge with the outer machine's address on it (idempotent)."""
    if not link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"], what=f"create bridge {bridge}")
        # the lab is IPv4 only; no router advertisements or SLAAC surprises on the bridge
        run(["sysctl", "-qw", f"net.ipv6.conf.{bridge}.disable_ipv6=1"], check=False)
    addrs = run(["ip", "-j", "addr", "show", "dev", bridge], what="read bridge address").stdout
    have = {f"{a['local']}/{a['prefixlen']}" for link in json.loads(addrs or "[]")
            for a in link.get("addr_info", []) if a.get("family") == "inet"}
    if str(address) not in have:
        run(["ip", "addr", "add", str(address), "dev", bridge], what=f"address {bridge}")
    run(["ip", "link", "set", bridge, "up"], what=f"bring up {bridge}")


# Every lab host's systemd, journald, udev and wireguard-go each hold inotify instances, and all
# of them count against the outer machine's root (nspawn without user namespaces). The kernel's
# default of 128 runs out at about ten hosts across the labs on one machine; wireguard-go then
# fails with "Failed to listen on uapi socket: too many open files" and wg-quick@wg0 with it.
INOTIFY_INSTANCES = 8192


def raise_inotify_limit(at_least: int = INOTIFY_INSTANCES) -> None:
    """Raise fs.inotify.max_user_instances to `at_least` (never lowers a higher setting)."""
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    try:
        if int(path.read_text()) < at_least:
            path.write_text(str(at_least))
    except (OSError, ValueError):
        pass  # not Linux or not allowed: the lab still works for a few hosts


def bridge_down(bridge: str) -> None:
    if link_exists(bridge):
        run(["ip", "link", "del", bridge], what=f"delete bridge {bridge}")


def render_guard(table: str, bridges: Sequence[str]) -> str:
    """nft ruleset: traffic entering from a lab bridge is only forwarded back onto it."""
    rules = "\n".join(f'    iifname "{b}" oifname != "{b}" drop' for b in bridges)
    return (f"table inet {table} {{\n"
            "  chain guard {\n"
            "    type filter hook forward priority -10; policy accept;\n"
            f"{rules}\n"
            "  }\n"
            "}\n")


def guard_exists(table: str) -> bool:
    return run(["nft", "list", "table", "inet", table], check=False).returncode == 0


def guard_up(table: str, bridges: Sequence[str]) -> None:
    if not guard_exists(table):
        run(["nft", "-f", "-"], input=render_guard(table, bridges), what=f"nft table {table}")


def guard_down(table: str) -> None:
    if guard_exists(table):
        run(["nft", "delete", "table", "inet", table], what=f"delete nft table {table}")


def fixed_mac(address: IPv4Address) -> str:
    """02:4c:<the 4 octets>: after a reset the neighbours' ARP entries stay right.

    With a random MAC per new veth, the outer machine and the other hosts kept sending to
    the old one for 25-35 s.
    """
    return "02:4c:" + ":".join(f"{octet:02x}" for octet in address.packed)


def netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def netns_list(prefix: str) -> list[str]:
    out = run(["ip", "-j", "netns", "list"], check=False).stdout
    return [n["name"] for n in json.loads(out or "[]") if n["name"].startswith(prefix)]


def netns_attach(ns: str, bridge: str, address: IPv4Interface, gateway: IPv4Address | None = None) -> None:
    """Network namespace `ns` with eth0 = `address`, its veth peer (named `ns`) on `bridge`.

    The address is set from outside, so nothing inside needs networkd. No default route
    unless a gateway is given (the lab's own hosts never get one).
    """
    if netns_exists(ns) and link_exists(ns):
        return
    netns_remove(ns)
    run(["ip", "netns", "add", ns], what=f"create netns {ns}")
    run(["ip", "link", "add", ns, "type", "veth", "peer", "name", "eth0",
         "address", fixed_mac(address.ip), "netns", ns], what=f"create veth {ns}")
    run(["ip", "link", "set", ns, "master", bridge, "up"], what=f"attach {ns} to {bridge}")
    run(["ip", "-n", ns, "link", "set", "lo", "up"], what=f"{ns}: lo up")
    run(["ip", "-n", ns, "addr", "add", str(address), "dev", "eth0"], what=f"{ns}: address")
    run(["ip", "-n", ns, "link", "set", "eth0", "up"], what=f"{ns}: eth0 up")
    if gateway is not None:
        run(["ip", "-n", ns, "route", "add", "default", "via", str(gateway)], what=f"{ns}: default route")


def netns_remove(ns: str) -> None:
    """Delete the namespace (which takes eth0 and so the veth pair with it) and the outer end."""
    if netns_exists(ns):
        run(["ip", "netns", "del", ns], check=False)
    if link_exists(ns):
        run(["ip", "link", "del", ns], check=False)


# ------------------------------------------------------------------ NAT router ----

ROUTER_TABLE = "homelab_router"


def render_router_nft() -> str:
    """nft ruleset inside the router namespace: masquerade what leaves by `wan`, and forward
    only what the `lan` side starts (plus its replies), so the main bridge cannot reach in."""
    return (f"table inet {ROUTER_TABLE} {{\n"
            "  chain forward {\n"
            "    type filter hook forward priority 0; policy drop;\n"
            "    ct state established,related accept\n"
            '    iifname "lan" oifname "wan" accept\n'
            "  }\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            '    oifname "wan" masquerade\n'
            "  }\n"
            "}\n")


def router_up(ns: str, wan: tuple[str, str, IPv4Interface], lan: tuple[str, str, IPv4Interface]) -> None:
    """A router namespace `ns` with legs `wan`/`lan`, each (outer link name, bridge, address).

    Only a namespace, no booted host: the outer machine's ip/nft configure it, so nothing
    has to be installed for it."""
    if netns_exists(ns) and link_exists(wan[0]) and link_exists(lan[0]):
        return
    router_down(ns, (wan[0], lan[0]))
    run(["ip", "netns", "add", ns], what=f"create netns {ns}")
    run(["ip", "-n", ns, "link", "set", "lo", "up"], what=f"{ns}: lo up")
    for inner, (link, bridge, address) in (("wan", wan), ("lan", lan)):
        run(["ip", "link", "add", link, "type", "veth", "peer", "name", inner,
             "address", fixed_mac(address.ip), "netns", ns], what=f"create veth {link}")
        run(["ip", "link", "set", link, "master", bridge, "up"], what=f"attach {link} to {bridge}")
        run(["ip", "-n", ns, "addr", "add", str(address), "dev", inner], what=f"{ns}: {inner} address")
        run(["ip", "-n", ns, "link", "set", inner, "up"], what=f"{ns}: {inner} up")
    run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"], what=f"{ns}: forwarding")
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=render_router_nft(), what=f"{ns}: nft masquerade")


def router_down(ns: str, links: Sequence[str]) -> None:
    netns_remove(ns)  # takes the inner veth ends, and with them the pairs
    for link in links:
        if link_exists(link):
            run(["ip", "link", "del", link], check=False)
