"""`homelab mesh rotate CONFIG [NODE]`: new WireGuard keys, made on the node(s) again.

The request is written to state first (section mesh, `rotate`: node -> the key to replace),
then an apply of the mesh layer generates the new key on each node, reads the public key
back, re-renders every peer's wg0.conf and applies it with `wg syncconf`. A rotation cut
short (a host down) is finished by the next apply. Afterwards the command polls the mesh
monitors until every link is up again (`--wait` seconds).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from homelab.errors import UsageError
from homelab.model import Health

HELP = "WireGuard mesh tools: `mesh rotate CONFIG [NODE]` replaces keys (made on the nodes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mesh_command", metavar="ACTION", required=True)
    p = sub.add_parser("rotate", help="generate new WireGuard keys on NODE (default: every node) and "
                                      "give its peers the new public key")
    p.add_argument("config", help="path to config.yaml")
    p.add_argument("node", nargs="?", help="the node whose key is replaced (default: all)")
    p.add_argument("--wait", type=float, default=30.0, metavar="S",
                   help="seconds to wait for every link to be up again (default 30, 0: do not wait)")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="pin host keys of machines never seen before (check fingerprints first)")
    p.add_argument("-v", "--verbose", action="store_true", help="also show what is unchanged and why")


def request_rotation(config: Any, node: str | None) -> list[str]:
    """Record which keys to replace (under the state lock); returns the nodes."""
    from homelab.state import RunLock, State

    mesh = config.get("mesh")
    if mesh is None:
        raise UsageError(f"{config.path}: has no mesh section", "add `mesh:` and apply first")
    names = [m.name for m in mesh.members]
    if node is not None and node not in names:
        raise UsageError(f"{node} is not a mesh node", f"mesh nodes: {', '.join(names)}")
    wanted = [node] if node else names
    with RunLock(config.state_path) as lock:
        lock.acquire("mesh rotate")
        state = State.load(config.state_path)
        section = state.section("mesh")
        keys = section.get("public_keys", {})
        new = [n for n in wanted if n not in keys]
        if new:
            raise UsageError(f"{', '.join(new)}: no WireGuard key yet, nothing to rotate",
                             "run `homelab apply` first")
        section.setdefault("rotate", {}).update({n: keys[n] for n in wanted})
        state.save()
    return wanted


def wait_for_links(config: Any, options: Any, log_path: Any, seconds: float) -> tuple[bool, list[Any], float]:
    """Poll the mesh monitors until all are OK or `seconds` pass: (ok, last monitors, elapsed)."""
    from homelab.drive import drive
    from homelab.engine import Engine

    start = time.monotonic()
    while True:
        statuses = drive(Engine(config, options, log_path).status(), None).statuses
        monitors = [m for s in statuses for m in s.monitors]
        bad = [m for m in monitors if m.health is not Health.OK]
        elapsed = time.monotonic() - start
        if not bad or elapsed >= seconds:
            return not bad, monitors, elapsed
        time.sleep(1.0)


def run(args: argparse.Namespace) -> int:
    from homelab.drive import drive  # the CLI's own event loop: log every event, render it
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.layers.base import RunOptions
    from homelab.render_text import TextRenderer

    config = load_config(args.config)
    nodes = request_rotation(config, args.node)
    print(f"rotating the WireGuard key of {', '.join(nodes)}", file=sys.stderr)
    options = RunOptions(accept_new_host_keys=args.accept_new_host_keys, yes=True, layers=("mesh",))
    renderer = TextRenderer(sys.stdout, sys.stderr, args.verbose)
    finished = drive(Engine(config, options, args.log_path).apply(), renderer).finished
    if finished is None or not finished.ok:
        print("rotation not finished; the next `homelab apply` completes it", file=sys.stderr)
        return 1
    if args.wait <= 0:
        return 0
    ok, monitors, elapsed = wait_for_links(config, RunOptions(layers=("mesh",)), args.log_path, args.wait)
    links = [m for m in monitors if m.name == "link"]
    if ok:
        print(f"all {len(links)} links up again after {elapsed:.1f} s", file=sys.stderr)
        return 0
    for m in monitors:
        if m.health is not Health.OK:
            print(f"  {m.health.value:<7} {m.subject}: {m.name}: {m.reason}", file=sys.stdout)
    print(f"links still down after {elapsed:.0f} s", file=sys.stderr)
    return 1


COMMAND = (HELP, add_arguments, run)
