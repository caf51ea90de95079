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
from typing import Mapping, Sequence

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


def render_probe_script(probes: Mapping[str, str] | Sequence[Mapping[str, str]],
                        nonce: str | None = None) -> tuple[str, str]:
    """Pure: (script, nonce). Each snippet runs in its own subshell, stderr merged, rc kept.

    `probes` is one group or a list of groups (one per layer). Snippets of a group run in
    order (a layer may rely on it: ping first, then read handshakes); groups run at the same
    time, each into its own temp files, and the output is printed in order once all are
    done. A no-op apply waits for the slowest layer, not for the sum of them.
    """
    nonce = nonce or secrets.token_hex(8)
    groups = [probes] if isinstance(probes, Mapping) else list(probes)
    for group in groups:
        for key in group:
            if not PROBE_KEY.match(key):
                raise ValueError(f"bad probe key {key!r}")
    parts = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             'd=$(mktemp -d) || exit 1', "trap 'rm -rf \"$d\"' EXIT"]
    n = 0
    order: list[tuple[int, str]] = []
    for group in groups:
        body = []
        for key, snippet in group.items():
            n += 1
            order.append((n, key))
            body.append(f"( {snippet}\n) </dev/null >\"$d/{n}\" 2>&1; echo $? >\"$d/{n}.rc\"")
        if body:
            parts.append("(\n" + "\n".join(body) + "\n) &")
    parts.append("wait")
    for i, key in order:
        parts.append(f"printf '%s\\n' '@{nonce} begin {key}'")
        parts.append(f"cat \"$d/{i}\"")
        parts.append(f"printf '\\n@{nonce} end {key} %s\\n' \"$(cat \"$d/{i}.rc\" 2>/dev/null || echo 255)\"")
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
