"""Step for layer 3 (compute): machines to adopt over SSH, and Hetzner Cloud servers.

Machines can be typed in, taken from a running `homelab lab` with one button, or be "this
machine" (`address: local`: the one homelab runs on, provisioned in place without SSH). Hetzner
servers (shown when the hetzner config module is built) are picked from lists of types
and locations with an approximate monthly price beside each type.
"""
from __future__ import annotations

import os
import re
import socket
from typing import Any, Mapping

from homelab.tui.wizard import hetzner_catalog
from homelab.tui.wizard.fields import Answers, Field, ListField
from homelab.tui.wizard.lab_machines import read_lab_machines
from homelab.tui.wizard.step import StepAction, WizardStep

MACHINES = ListField(
    "machines", "Machines to adopt (existing, reachable over SSH)",
    (
        Field("name", "name", placeholder="pi-1", width=10),
        Field("address", "address", placeholder="192.168.1.20", width=15),
        Field("user", "user", default="root", width=6),
        Field("port", "port", kind="int", default="22", width=5),
        Field("key", "key (optional)", placeholder="~/.ssh/pi_key", width=14),
        # its public IPv6 where the address is IPv4 or a name: ingress writes AAAA records to it
        Field("ipv6", "ipv6 (optional)", placeholder="2001:db8::20", width=15),
    ),
    comment="Existing machines adopted over SSH (a Pi, a NAS, an old PC).",
    add_label="add a machine",
)

SERVERS = ListField(
    "hetzner.servers", "Hetzner Cloud servers to create",
    (
        Field("name", "name", placeholder="web-1", width=12),
        Field("type", "type", kind="choice", default="cx22", choices=hetzner_catalog.type_choices(), width=34),
        Field("location", "location", kind="choice", default="fsn1", choices=hetzner_catalog.location_choices(),
              width=22),
    ),
    comment="Hetzner Cloud servers homelab creates (and only ever changes or deletes these).",
    add_label="add a server",
)

TIMEZONE = Field("base.timezone", "Time zone of every machine", default="UTC", path="base.timezone",
                 comment="IANA time zone, set as /etc/localtime on every machine.")


def machine_choices(answers: Mapping[str, Answers]) -> tuple[tuple[str, str], ...]:
    """(label, name) of every machine and Hetzner server named in the machines step so far: what
    the other steps' machine fields pick from."""
    compute = answers.get("compute", {})
    out: list[tuple[str, str]] = []
    for field, what in ((MACHINES, "machine"), (SERVERS, "Hetzner server")):
        for row in compute.get(field.key, ()):
            name = str(row.get("name", "")).strip()
            if name and name not in {n for _, n in out}:
                at = str(row.get("address", "") or row.get("type", "")).strip()
                out.append((f"{name}  ({what}{', ' + at if at else ''})", name))
    return tuple(out)


def add_lab_machines(answers: Answers) -> Answers:
    """Append the running lab's machines (user admin, the lab's key), skipping names already there."""
    rows: list[dict[str, Any]] = [dict(r) for r in answers.get("machines", ())
                                  if str(r.get("name", "")).strip() or str(r.get("address", "")).strip()]
    names = {str(r.get("name", "")).strip() for r in rows}
    for m in read_lab_machines():
        if m.name not in names:
            rows.append({"name": m.name, "address": m.address, "user": m.user, "port": str(m.port), "key": m.key})
    return {**answers, "machines": tuple(rows)}


def this_machine_row() -> dict[str, Any]:
    """The machine homelab runs on, named after its hostname (made a valid machine name)."""
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"server-{name}".rstrip("-")
    return {"name": name[:63], "address": "local", "user": "root", "port": "", "key": ""}


def has_this_machine(answers: Answers) -> bool:
    return any(str(r.get("address", "")).strip() == "local" for r in answers.get("machines", ()))


def add_this_machine(answers: Answers) -> Answers:
    """Put "this machine" first (once): the config can later be applied from a laptop by
    giving it the machine's real address."""
    if has_this_machine(answers):
        return answers
    rows = [dict(r) for r in answers.get("machines", ()) if str(r.get("name", "")).strip()
            or str(r.get("address", "")).strip()]
    return {**answers, "machines": (this_machine_row(), *rows)}


def on_a_server() -> bool:
    """`./homelab` run in an SSH login (a fresh server, no config yet): "this machine" is the
    likely answer, so the wizard starts with it."""
    return bool(os.environ.get("SSH_CONNECTION"))


def lab_running() -> bool:
    return bool(read_lab_machines())


class ComputeStep(WizardStep):
    section = "compute"
    title = "machines"
    intro = ("The machines everything runs on: existing ones adopted over SSH (a Pi, a NAS, an old PC, "
             "or a `homelab lab` host), this machine (address local, no SSH) and Hetzner Cloud servers.")
    comment = "the machines everything runs on"
    fields = (MACHINES, SERVERS, TIMEZONE)
    actions = (StepAction("lab", "add the lab's machines", add_lab_machines, lab_running),
               StepAction("local", "add this machine", add_this_machine))


STEP = ComputeStep()
