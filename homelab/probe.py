"""Batched observation: every layer's read-only checks for a host in ONE remote command.

Each layer names shell snippets ("probes") it wants to see the output of. The engine joins
all of them into one script, runs it as root in one round trip, and splits the output back
per probe. A no-op apply therefore costs one connection and about one command per host,
where a fact-per-command engine pays ~2 commands per operation.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Mapping

PROBE_KEY = re.compile(r"^[a-z0-9_.:-]{1,80}$")


@dataclass(frozen=True)
class ProbeResult:
    rc: int
    out: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def lines(self) -> list[str]:
        return [ln for ln in self.out.splitlines() if ln.strip()]


def render_probe_script(probes: Mapping[str, str], nonce: str | None = None) -> tuple[str, str]:
    """Pure: (script, nonce). Each snippet runs in its own subshell, stderr merged, rc kept."""
    nonce = nonce or secrets.token_hex(8)
    parts = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    for key, snippet in probes.items():
        if not PROBE_KEY.match(key):
            raise ValueError(f"bad probe key {key!r}")
        parts.append(f"printf '%s\\n' '@{nonce} begin {key}'")
        parts.append(f"( {snippet}\n) </dev/null 2>&1")
        parts.append(f"printf '\\n@{nonce} end {key} %d\\n' $?")
    return "\n".join(parts) + "\n", nonce


def parse_probe_output(text: str, nonce: str) -> dict[str, ProbeResult]:
    """Pure: split the script's output back into one result per probe."""
    results: dict[str, ProbeResult] = {}
    begin, end = f"@{nonce} begin ", f"@{nonce} end "
    key: str | None = None
    buf: list[str] = []
    for line in text.split("\n"):
        if line.startswith(begin):
            key, buf = line[len(begin):], []
        elif line.startswith(end) and key is not None:
            k, _, rc = line[len(end):].rpartition(" ")
            out = "\n".join(buf)
            if out.endswith("\n"):
                out = out[:-1]
            results[k] = ProbeResult(int(rc) if rc.lstrip("-").isdigit() else 255, out)
            key = None
        elif key is not None:
            buf.append(line)
    return results
