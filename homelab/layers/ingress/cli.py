"""`homelab ca export CONFIG [-o FILE]`: the root of Caddy's internal CA, for `tls: internal` names.

Install it on a person's devices so they trust the names only reachable inside the homelab.
It is read from the first ingress machine (every ingress machine has its own internal CA, so
with several, `--machine` picks one). Only the public certificate leaves the host; the root's
key stays where Caddy made it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from homelab.errors import HomelabError, UsageError

HELP = "Caddy's internal CA: `ca export CONFIG [-o FILE]` (the root certificate for tls: internal)"
ROOT_CRT = "/var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt"
BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ca_command", metavar="ACTION", required=True)
    p = sub.add_parser("export", help="print (or write to FILE) the internal CA's root certificate")
    p.add_argument("config", help="path to config.yaml")
    p.add_argument("-o", "--output", metavar="FILE", help="write it here (default: stdout)")
    p.add_argument("--machine", help="the ingress machine to read it from (default: the first)")


def export_command() -> str:
    """Prints the PEM, or says why not (exit 3: no internal CA yet)."""
    return (f"if [ -s {ROOT_CRT} ]; then cat {ROOT_CRT}; else "
            "echo 'no internal CA yet: Caddy makes it when it first serves a tls internal site' >&2; exit 3; fi")


def parse_pem(text: str) -> str:
    """The one certificate in `text`, or HomelabError."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise HomelabError("the internal CA's root is not a PEM certificate")
    return text[start:end + len(END)] + "\n"


def run(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.layers.base import RunOptions

    config = load_config(args.config)
    ingress = config.get("ingress")
    if ingress is None:
        raise UsageError(f"{config.path} has no ingress section", "add ingress: (machines, tls: {mode: internal})")
    machine = args.machine or ingress.machines[0]
    if machine not in ingress.machines:
        raise UsageError(f"{machine} is not an ingress machine", f"ingress.machines: {', '.join(ingress.machines)}")
    session = Engine(config, RunOptions(), args.log_path).open_host(machine)
    try:
        r = session.run_script(export_command(), timeout=30)
    finally:
        session.close()
    if r.rc != 0:
        raise HomelabError(f"{machine}: {r.stderr.strip() or f'reading {ROOT_CRT} failed (exit {r.rc})'}",
                           "apply a config with a tls: internal site first")
    pem = parse_pem(r.stdout)
    if args.output:
        Path(args.output).write_text(pem)
        print(f"{args.output}: the internal CA root of {machine} (install it as a trusted CA on your devices)",
              file=sys.stderr)
    else:
        sys.stdout.write(pem)
    return 0


COMMAND = (HELP, add_arguments, run)
