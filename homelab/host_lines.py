"""Lines that say the same of many hosts, said once (pure; the CLI and the TUI use it).

Layers write per-host lines as "HOST: what" (warnings, hosts not planned). Ten hosts with the
same masked timer are one line naming them, not ten screens of one sentence at 80 columns."""
from __future__ import annotations

from typing import Collection, Sequence


def grouped_by_host(lines: Sequence[str], hosts: Collection[str]) -> list[str]:
    """"a: x", "b: x", "a: y" -> "a, b: x", "a: y" (in first-seen order). Only a prefix that is a
    host of the run counts: other lines stay as they are, in their place."""
    order: list[str] = []
    names: dict[str, list[str]] = {}
    for line in lines:
        host, sep, rest = line.partition(": ")
        if sep and host in hosts:
            if rest not in names:
                order.append(rest)
                names[rest] = []
            if host not in names[rest]:
                names[rest].append(host)
        else:
            order.append("\0" + line)  # kept as written
    out = []
    for item in order:
        if item.startswith("\0"):
            out.append(item[1:])
        else:
            who = names[item]
            out.append(f"{', '.join(who)}{f' ({len(who)} hosts)' if len(who) > 2 else ''}: {item}")
    return out
