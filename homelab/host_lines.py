"""Lines that say the same of many hosts, said once (pure; the CLI and the TUI use it).

Layers write per-host lines as "HOST: what" (warnings, hosts not planned). Ten hosts with the
same masked timer are one line naming them, not ten screens of one sentence at 80 columns."""
from __future__ import annotations

from typing import Collection, Sequence


def grouped_by_host(lines: Sequence[str], hosts: Collection[str]) -> list[str]:
    """"a: x", "b: x", "a: y" -> "a, b: x", "a: y" (in first-seen order). Only a prefix that is a
    host of the run counts: other lines stay as they are, in their place."""
    entries: list[tuple[str, list[str] | None]] = []  # (words, the hosts saying them) or (a line kept, None)
    groups: dict[str, list[str]] = {}
    for line in lines:
        host, sep, rest = line.partition(": ")
        if not sep or host not in hosts:
            entries.append((line, None))
        elif rest not in groups:
            groups[rest] = [host]
            entries.append((rest, groups[rest]))
        elif host not in groups[rest]:
            groups[rest].append(host)
    return [text if who is None else f"{', '.join(who)}{f' ({len(who)} hosts)' if len(who) > 2 else ''}: {text}"
            for text, who in entries]
