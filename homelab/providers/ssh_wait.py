"""Waiting for a new server's SSH, with a deadline, checking it offers the host key we sent.

A port that accepts TCP is not enough: sshd may still be starting, or (if cloud-init did
not apply our key) offer another key. We do the SSH key exchange only (no login) until the
server offers the pinned key or the deadline passes.
"""
from __future__ import annotations

import socket
import time
from typing import Callable

import homelab.ssh  # noqa: F401  first: it imports paramiko without invoke (see there)
from homelab.errors import HomelabError

import paramiko  # noqa: E402


def offered_host_key(address: str, port: int, key_type: str, timeout: float = 5.0) -> str | None:
    """The host key of `key_type` a server offers, or None if it does not answer SSH (yet)."""
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError:
        return None
    transport = paramiko.Transport(sock)
    try:
        transport.get_security_options().key_types = [key_type]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    except (paramiko.SSHException, OSError, EOFError):
        return None
    finally:
        transport.close()


def wait_for_ssh(name: str, address: str, port: int, pinned: str | None, deadline_s: float,
                 probe: Callable[[str, int, str], str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once `address` answers SSH with the pinned key; raise after `deadline_s`."""
    probe = probe or (lambda a, p, t: offered_host_key(a, p, t))
    key_type = pinned.split()[0] if pinned else "ssh-ed25519"
    start = clock()
    last: str | None = None
    while True:
        last = probe(address, port, key_type)
        if last is not None and (pinned is None or last.split()[:2] == pinned.split()[:2]):
            return
        if clock() - start >= deadline_s:
            break
        sleep(min(2.0, max(0.1, deadline_s - (clock() - start))))
    if last is None:
        raise HomelabError(f"server {name} did not answer SSH within {deadline_s:.0f} s",
                           f"it may still be booting: apply again later (compute.hetzner.ssh_timeout); "
                           f"address {address}")
    raise HomelabError(f"server {name} answers SSH with a host key other than the one homelab sent it",
                       "cloud-init did not install the pre-seeded key: check the image supports cloud-init; "
                       "homelab will not connect to it")
