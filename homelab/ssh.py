"""SSH connections for observing hosts: paramiko, host keys pinned in state, TCP_NODELAY.

Why not paramiko.SSHClient: we verify the host key ourselves *before* authenticating, with
exactly one rule set (pinned in state; unknown only when the user allows; changed never), and
there is no auto-accept policy anywhere. Why TCP_NODELAY: paramiko leaves Nagle on, which
costs ~40 ms per command (measured: 44 ms -> 2 ms for `true`).
"""
from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from homelab.paramiko_import import lean_paramiko_import

with lean_paramiko_import():  # without invoke and importlib.metadata (see there)
    import paramiko

from homelab.errors import HomelabError, HostDown, HostKeyError
from homelab.hosts import HostTarget

# Ask for ed25519 first: it is what we pin and what cloud-init pre-seeds.
PREFERRED_HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256"]


def fingerprint(key_line: str) -> str:
    """SHA256 fingerprint as OpenSSH prints it, from "type base64"."""
    blob = base64.b64decode(key_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class CommandResult:
    rc: int
    stdout: str
    stderr: str


# Decides about a host key never seen before: returns True to pin it.
AcceptNew = Callable[[HostTarget, str], bool]


def load_private_key(path: str) -> paramiko.PKey:
    p = Path(os.path.expanduser(path))
    try:
        return paramiko.PKey.from_path(p)
    except FileNotFoundError:
        raise HomelabError(f"SSH key {p} does not exist",
                           "set privilege.ssh_key to your key, or privilege.generate_key: true") from None
    except paramiko.PasswordRequiredException:
        raise HomelabError(f"SSH key {p} is encrypted", "add it to ssh-agent (ssh-add) and set privilege.use_agent") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise HomelabError(f"SSH key {p} cannot be read: {exc}") from None


def handshake_hint(exc: BaseException, address: str) -> str:
    """What a failed SSH handshake most likely means. sshd that accepts the TCP connection and
    closes it before its greeting is refusing *this source*: OpenSSH 9.8+ does that for a while
    after failed logins or scanner traffic from the address (PerSourcePenalties; authfail adds
    5 s per failure, up to 10 min by default), and MaxStartups does it under many half-open logins."""
    text = f"{type(exc).__name__} {exc}".lower()
    if "banner" in text or isinstance(exc, (EOFError, ConnectionResetError)) or "reset by peer" in text:
        return (f"{address} accepted the connection and closed it before greeting: sshd is probably refusing "
                "this address for a while after failed logins or scanner traffic (OpenSSH 9.8+ "
                "PerSourcePenalties; its log says 'penalty'). Wait a few minutes and run again; on the host, "
                "`journalctl -u ssh | grep penalty` shows it, and PerSourcePenaltyExemptList exempts your address")
    return "check that sshd runs there and accepts your key"


def unreachable_hint(met_before: bool) -> str:
    """What to do about a machine that does not take the TCP connection. One homelab has met
    (its host key is pinned) is most often rebooting (unattended upgrades) or just powered on."""
    if met_before:
        return ("homelab reached it before: if it is rebooting or starting, run again once it is up "
                "(apply waits for it: --wait-for-hosts SECONDS); else check that it is on and that its "
                "address and port in the config are still right")
    return "is the machine on and reachable? check address and port in the config"


class Connection:
    """One authenticated SSH transport to one host; commands are channels on it."""

    def __init__(self, transport: paramiko.Transport, target: HostTarget) -> None:
        self.transport = transport
        self.target = target
        self.commands = 0  # remote commands run (benchmarks count these)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, target: HostTarget, pinned: str | None, accept_new: AcceptNew | None,
             use_agent: bool = True, timeout: float = 10.0) -> tuple[Connection, str]:
        """Connect, verify the host key, authenticate. Returns (connection, host key line)."""
        try:
            sock = socket.create_connection((target.address, target.port), timeout=timeout)
        except OSError as exc:  # refused, timed out, no route, or a name (mDNS: pi.local) not answering
            raise HostDown(f"connect to {target.name} ({target.address}:{target.port}): {exc.strerror or exc}",
                           unreachable_hint(pinned is not None)) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        opts = transport.get_security_options()
        wanted = pinned.split()[0] if pinned else None
        opts.key_types = [wanted] if wanted else [t for t in PREFERRED_HOST_KEY_TYPES if t in opts.key_types]
        try:
            transport.start_client(timeout=timeout)
            key = transport.get_remote_server_key()
            offered = f"{key.get_name()} {key.get_base64()}"
            cls._verify(target, pinned, offered, accept_new)
            cls._authenticate(transport, target, use_agent)
        except HomelabError:
            transport.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise HomelabError(f"ssh to {target.name} ({target.address}): {exc or type(exc).__name__}",
                               handshake_hint(exc, target.address)) from None
        transport.set_keepalive(30)
        return cls(transport, target), offered

    @staticmethod
    def _verify(target: HostTarget, pinned: str | None, offered: str, accept_new: AcceptNew | None) -> None:
        if pinned:
            if pinned.split()[:2] != offered.split()[:2]:
                raise HostKeyError(
                    f"host key of {target.name} ({target.address}) CHANGED: pinned {fingerprint(pinned)}, "
                    f"offered {fingerprint(offered)}; refusing to connect",
                    f"if {target.name} was reinstalled, check the new fingerprint on its console, then run "
                    f"`homelab forget-host CONFIG {target.name}` and apply with --accept-new-host-keys",
                )
            return
        if accept_new is None or not accept_new(target, offered):
            raise HostKeyError(
                f"host key of {target.name} ({target.address}) is not known yet: {fingerprint(offered)}",
                "compare it with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the machine, "
                "then run again with --accept-new-host-keys",
            )

    @staticmethod
    def _authenticate(transport: paramiko.Transport, target: HostTarget, use_agent: bool) -> None:
        keys: list[paramiko.PKey] = []
        if target.key_path:
            keys.append(load_private_key(target.key_path))
        agent = None
        if use_agent and os.environ.get("SSH_AUTH_SOCK"):
            agent = paramiko.Agent()
            keys.extend(agent.get_keys())
        try:
            for key in keys:
                try:
                    transport.auth_publickey(target.user, key)
                    if transport.is_authenticated():
                        return
                except paramiko.AuthenticationException:
                    continue
        finally:
            if agent is not None:
                agent.close()
        raise HomelabError(
            f"ssh to {target.name}: {target.user}@{target.address} refused every key offered ({len(keys)})",
            "put the operator public key in that user's ~/.ssh/authorized_keys (on a machine homelab hardened, sshd "
            "reads only /etc/ssh/homelab-keys/USER: log in as a user permissions.users names), or fix `user`/`key` "
            "in the config",
        )

    def run(self, command: str, stdin: str = "", timeout: float = 600.0) -> CommandResult:
        """Run one command; `stdin` carries scripts and data (never put secrets in `command`)."""
        with self._lock:
            self.commands += 1
        try:
            chan = self.transport.open_session(timeout=30)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if stdin:
                chan.sendall(stdin.encode())
            chan.shutdown_write()
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            # the channel's fileno turns readable on stdout data and on close; stderr is
            # drained on every wake-up (the 0.2 s tick only bounds a stderr-only wait)
            while not (chan.exit_status_ready() and chan.closed) and not chan.eof_received:
                if time.monotonic() > deadline:
                    raise HomelabError(f"{self.target.name}: command timed out after {timeout:.0f} s")
                select.select([chan], [], [], 0.2)
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
            while True:  # what arrived with EOF
                chunk = chan.recv(65536)
                if not chunk:
                    break
                out += chunk
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            rc = chan.recv_exit_status()
            chan.close()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HomelabError(f"{self.target.name}: connection lost: {exc}", "check the machine and run again") from None
        return CommandResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def run_script(self, script: str, timeout: float = 600.0) -> CommandResult:
        """A shell script over stdin, as root (sudo -n for other users)."""
        shell = "sudo -n sh -s" if self.target.sudo else "sh -s"
        return self.run(shell, stdin=script, timeout=timeout)

    def close(self) -> None:
        self.transport.close()
