"""WireGuard keys: where they live on a node and the shell that makes them there.

Private keys and preshared keys are created ON the node by `wg genkey`/`wg genpsk` with
umask 077, written straight into their file: the value never passes through a process
argument, an SSH command line, pyinfra's output or the controller. Only `wg pubkey`'s
output (a public key) is read back. Pure: builders return shell text, tests assert it.
"""
from __future__ import annotations

import re
import shlex

WG_DIR = "/etc/wireguard"
PRIVATE_KEY = f"{WG_DIR}/private.key"
PSK_DIR = f"{WG_DIR}/psk"
# a Curve25519 key in base64: 32 bytes -> 43 characters + "=" (the last one carries 4 bits)
KEY = re.compile(r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$")


def is_key(value: str) -> bool:
    return bool(KEY.match(value))


def psk_path(peer: str) -> str:
    """The preshared key this node shares with `peer` (names are validated NAME identifiers)."""
    return f"{PSK_DIR}/{peer}.psk"


def psk_owner(a: str, b: str) -> str:
    """Which node of a pair creates their preshared key: the first by name (stable, no state)."""
    return min(a, b)


def _generate(tool: str, path: str, *, replace: bool) -> str:
    """Write `wg <tool>` output to `path` atomically (0600); keep an existing key unless `replace`."""
    p = shlex.quote(path)
    tmp = shlex.quote(path + ".new")
    make = f"umask 077 && {{ wg {tool} > {tmp} && chmod 600 {tmp} && mv -f {tmp} {p} || {{ rm -f {tmp}; false; }}; }}"
    return f"( {make} )" if replace else f"( [ -s {p} ] || {{ {make}; }} )"


def generate_private_key_command(*, replace: bool = False) -> str:
    return (f"install -d -m 700 {WG_DIR} && " + _generate("genkey", PRIVATE_KEY, replace=replace))


def generate_psk_command(peers: list[str]) -> str:
    parts = [f"install -d -m 700 {PSK_DIR}"]
    parts += [_generate("genpsk", psk_path(peer), replace=False) for peer in peers]
    return " && ".join(parts)
