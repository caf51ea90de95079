"""`homelab lab ...`: the command line of the local test lab.

    homelab lab up 3 [--suite trixie|bookworm] [--bookworm M]
    homelab lab status | inventory | down
    homelab lab ssh h1 [CMD...]
    homelab lab reset h2 [h3 ...]
    homelab lab nat h3 [--off]          # h3 behind a masquerading router, like a home machine
    homelab lab images [KEY ...]        # build (cached) + push the lab images, print their refs

Exit codes: 0 ok, 1 failure (or a missing requirement, named on one line), 2 usage.
`ssh` exits with the remote command's status. Progress goes to stderr with timings.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
from typing import Any, Callable

from homelab.errors import HomelabError, UsageError
from homelab.lab.config import DEFAULT_SUITE, SUITES, LabConfig, missing_requirements

log = logging.getLogger("homelab.lab")


def add_arguments(subparsers: Any) -> None:
    """Register `lab` and its subcommands on the main parser's subparsers."""
    lab = subparsers.add_parser("lab", help="throwaway local Debian hosts to test against (needs root)",
                                description="Local Debian 13/12 hosts (systemd-nspawn) for tests. "
                                            "Settings: HOMELAB_LAB_INSTANCE, HOMELAB_LAB_DIR, HOMELAB_LAB_CACHE.")
    sub = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    sub.required = True
    up = sub.add_parser("up", help="bring up hosts h1..hN (builds the cache the first time, ~1 min per suite)")
    up.add_argument("n", type=int, metavar="N", help="number of hosts of --suite")
    up.add_argument("--suite", choices=sorted(SUITES), default=DEFAULT_SUITE, help=f"default {DEFAULT_SUITE}")
    up.add_argument("--bookworm", type=int, default=0, metavar="M", help="M more hosts with Debian 12 (after the N)")
    sub.add_parser("down", help="stop and remove everything up made")
    sub.add_parser("status", help="bridge, repo server, hosts and their systemd state")
    ssh = sub.add_parser("ssh", help="ssh into a host as root (strict host keys)")
    ssh.add_argument("name", metavar="NAME")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD")
    reset = sub.add_parser("reset", help="replace hosts by pristine ones (same name and address)")
    reset.add_argument("names", nargs="+", metavar="NAME")
    sub.add_parser("inventory", help="print the inventory as JSON")
    nat = sub.add_parser("nat", help="move hosts behind a masquerading router (unreachable from the "
                                     "main bridge, like home machines); they reboot, disks kept")
    nat.add_argument("names", nargs="+", metavar="NAME")
    nat.add_argument("--off", action="store_true", help="move them back onto the main bridge")
    images = sub.add_parser("images", help="build (once, cached) and push the lab's app images into its "
                                           "registry (labrepo:5000); prints what hosts pull")
    images.add_argument("keys", nargs="*", metavar="KEY", help="only these (default: all of the catalog)")
    cfg = sub.add_parser("config", help="print a homelab config adopting the lab's hosts")
    cfg.add_argument("--hosts", nargs="+", metavar="NAME", help="only these hosts (default: all)")
    demo = sub.add_parser("demo", help="the main job on a built-in default: up 3 hosts, write lab.yaml, apply it")
    demo.add_argument("--output", default="lab.yaml", metavar="PATH", help="where to write the config (lab.yaml)")
    demo.add_argument("-n", type=int, default=3, metavar="N", help="number of hosts (3)")


def run(args: argparse.Namespace) -> int:
    """Run `homelab lab <subcommand>`; returns the exit code."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[lab %(asctime)s] %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        config = LabConfig.from_env()
        why = missing_requirements(config)
        if why:
            print(f"error: {why}", file=sys.stderr)
            return 1
        from homelab.lab.manager import Lab  # after the checks: nothing below runs without root

        return COMMANDS[args.lab_command](Lab(config), args)
    except UsageError as exc:
        _print_error(exc)
        return 2
    except HomelabError as exc:
        _print_error(exc)
        return 1
    except BrokenPipeError:  # `homelab lab inventory | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        log.removeHandler(handler)


def _print_error(exc: HomelabError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def cmd_up(lab: Any, args: argparse.Namespace) -> int:
    if args.n < 0 or args.bookworm < 0 or args.n + args.bookworm < 1:
        raise UsageError("up: ask for at least one host (N >= 0, M >= 0, N + M >= 1)")
    also = {"bookworm": args.bookworm} if args.bookworm else {}
    if args.suite == "bookworm" and also:
        also, args.n = {}, args.n + args.bookworm
    lab.up(args.n, args.suite, also=also)
    inv = lab.inventory()
    print(f"lab {inv['instance']} is up in {inv['dir']}")
    print(f"  inventory  {lab.inventory_path}")
    print(f"  ssh        ssh -F {inv['ssh_config']} h1   (or: homelab lab ssh h1)")
    _print_hosts(inv["hosts"])
    return 0


def _print_hosts(rows: list[dict[str, Any]]) -> None:
    print(f"  {'NAME':<5} {'ADDRESS':<14} {'SUITE':<9} {'DEBIAN':<7} STATE")
    for h in rows:
        state = "running" if h["running"] else "stopped"
        print(f"  {h['name']:<5} {h['address']:<14} {h['suite']:<9} {h['debian_version']:<7} {state}")


def cmd_down(lab: Any, args: argparse.Namespace) -> int:
    lab.down()
    print(f"lab {lab.config.instance} is down")
    return 0


def cmd_status(lab: Any, args: argparse.Namespace) -> int:
    st = lab.status()
    print(f"lab {st.instance} ({st.dir})")
    print(f"  bridge {st.bridge}: {'up' if st.bridge_up else 'absent'}")
    print(f"  apt repo {st.repo_url}: " + (f"pid {st.repo_pid}" if st.repo_pid else "stopped"))
    print(f"  registry https://{st.registry}: " + (f"pid {st.registry_pid}" if st.registry_pid else "stopped"))
    if not st.hosts:
        print("  no hosts")
    for h in st.hosts:
        print(f"  {h.name:<5} {h.address:<14} {h.suite:<9} {h.state:<8} pid={h.nspawn_pid or '-':<8} systemd={h.systemd}")
    return 0


def cmd_ssh(lab: Any, args: argparse.Namespace) -> int:
    if args.name not in lab.host_names():
        raise UsageError(f"no such lab host: {args.name}", f"hosts: {', '.join(lab.host_names()) or 'none'}")
    rc = subprocess.run([*lab.ssh_argv(args.name), *args.cmd]).returncode
    enter = lab.enter_argv(args.name) if rc == 255 else None
    if enter is not None:  # hardened by homelab (root login off): enter the host's namespaces instead
        print(f"ssh as root refused (homelab hardened {args.name}); entering it directly", file=sys.stderr)
        rc = subprocess.run([*enter, " ".join(args.cmd) or "exec bash -l"]).returncode
    return rc


def cmd_reset(lab: Any, args: argparse.Namespace) -> int:
    unknown = [n for n in args.names if n not in lab.host_names()]
    if unknown:
        raise UsageError(f"no such lab host: {', '.join(unknown)}", f"hosts: {', '.join(lab.host_names()) or 'none'}")
    lab.reset(*args.names)
    print(f"reset {' '.join(args.names)}")
    return 0


def cmd_nat(lab: Any, args: argparse.Namespace) -> int:
    unknown = [n for n in args.names if n not in lab.host_names()]
    if unknown:
        raise UsageError(f"no such lab host: {', '.join(unknown)}", f"hosts: {', '.join(lab.host_names()) or 'none'}")
    if args.off:
        lab.move_to_bridge(*args.names)
    else:
        lab.move_behind_nat(*args.names)
    for name in args.names:
        where = f"behind NAT (router {lab.config.router_lan.ip})" if name in lab.nat_hosts() else "on the main bridge"
        print(f"{name} {lab.address(name)} {where}")
    return 0


def cmd_inventory(lab: Any, args: argparse.Namespace) -> int:
    print(json.dumps(lab.inventory(), indent=2))
    return 0


def cmd_config(lab: Any, args: argparse.Namespace) -> int:
    from homelab.lab.demo import render_lab_config

    print(render_lab_config(lab.inventory(), hosts=args.hosts), end="")
    return 0


def cmd_demo(lab: Any, args: argparse.Namespace) -> int:
    """up N, write a config for them, apply it (the lab made these hosts, so their keys are pinned
    on first sight), then show that a second plan has nothing to do."""
    from pathlib import Path

    from homelab.lab.demo import render_demo_config

    homelab_main: Callable[[list[str]], int] = args.homelab_main  # handed in by the CLI (no import back into it)

    lab.up(args.n)
    print("building the lab's app images (minutes the first time, cached after) ...", file=sys.stderr)
    lab.ensure_images()
    path = Path(args.output).resolve()
    secret = path.with_name(path.stem + ".restic-password")
    if not secret.exists():  # the backup repository password: made once, kept by you (0600)
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    path.write_text(render_demo_config(lab.inventory(), str(secret)))
    print(f"wrote {path}; applying it", file=sys.stderr)
    rc = homelab_main(["apply", str(path), "--yes", "--accept-new-host-keys"])
    if rc != 0:
        return rc
    rc = homelab_main(["plan", str(path)])
    # the first backups and a restore drill now, rather than at their timers: what they prove is shown
    for step in (["backup", str(path), "run"], ["backup", str(path), "drill"]):
        if homelab_main(step) != 0:
            rc = rc or 1
    print(f"\nnext: homelab status {path} | homelab tui {path} | homelab lab down", file=sys.stderr)
    return 0 if rc == 0 else 1


def cmd_images(lab: Any, args: argparse.Namespace) -> int:
    from homelab.lab.images.catalog import CATALOG

    unknown = [k for k in args.keys if k not in CATALOG]
    if unknown:
        raise UsageError(f"images: no lab image {', '.join(unknown)}", f"known: {', '.join(CATALOG)}")
    refs = lab.ensure_images(args.keys or None)
    width = max(len(k) for k in refs)
    for key, ref in refs.items():
        spec = CATALOG[key]
        print(f"  {key:<{width}}  {ref:<52} {spec.kind} of {spec.ref}")
    return 0


COMMANDS = {
    "up": cmd_up, "down": cmd_down, "status": cmd_status, "ssh": cmd_ssh, "reset": cmd_reset,
    "inventory": cmd_inventory, "config": cmd_config, "demo": cmd_demo, "nat": cmd_nat, "images": cmd_images,
}
