"""Waiting for apt's and dpkg's locks on a host: bounded, with progress, then a clear error.

A fresh Debian host often runs unattended-upgrades for minutes after boot; apt-get then fails
at once with "Could not get lock" (measured on a lab host: 0.02 s). Before every operation
that uses apt or dpkg, the worker runs `render_holders_probe()` until no lock is held, telling
who holds it every PROGRESS_EVERY seconds, and gives up after the timeout naming the holder.
The commands themselves also get `-o DPkg::Lock::Timeout=N` (apt >= 1.9.11), which covers a
holder that appears between the probe and the command.

The probe reads /proc/locks, not apt: it sees POSIX (apt, dpkg), OFD and flock(2) locks alike
(flock(2) and fcntl locks do not conflict on Linux, so apt itself would not see a flock holder),
and it works where no python or psmisc (`fuser`) is installed.

Pure except `timeout_from_env`; the worker does the I/O.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

ENV_TIMEOUT = "HOMELAB_APT_LOCK_TIMEOUT"  # seconds; the e2e drill sets a few
DEFAULT_TIMEOUT = 120  # unattended-upgrades' usual run after boot fits; a stuck one does not
POLL_EVERY = 2.0  # seconds between probes
PROGRESS_EVERY = 10.0  # seconds between "waiting for ..." messages

# every lock apt-get, apt and dpkg take (frontend first: apt >= 1.9 takes it before the others)
LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
         "/var/cache/apt/archives/lock")

# For shell scripts that run apt-get themselves (the worker exports ENV_TIMEOUT to them).
APT_GET = f'apt-get -o DPkg::Lock::Timeout="${{{ENV_TIMEOUT}:-{DEFAULT_TIMEOUT}}}"'


@dataclass(frozen=True)
class Holder:
    path: str  # the lock file
    pid: int  # -1: an OFD lock (no owner process recorded)
    command: str  # the holder's /proc/PID/comm, "" when unknown

    def describe(self) -> str:
        if self.pid <= 0:
            return f"{self.path} (holder unknown: an open-file lock)"
        return f"{self.path} held by PID {self.pid}" + (f" ({self.command})" if self.command else "")


def timeout_from_env(env: Mapping[str, str] = os.environ) -> int:
    """The wait in whole seconds: ENV_TIMEOUT when it is a non-negative integer, else the default."""
    raw = env.get(ENV_TIMEOUT, "").strip()
    return int(raw) if raw.isdigit() else DEFAULT_TIMEOUT


def render_holders_probe(paths: tuple[str, ...] = LOCKS) -> str:
    """sh: one `held PATH PID COMM` line per held lock, nothing when all are free.

    /proc/locks names a file as MAJ:MIN:INODE in hex (the kernel's dev_t split: 12-bit major,
    20-bit minor) with PIDs as this host's PID namespace sees them."""
    return "\n".join([
        f"for f in {' '.join(shlex.quote(p) for p in paths)}; do",
        '  [ -e "$f" ] || continue',
        '  d=$((0x$(stat -c %D "$f"))); i=$(stat -c %i "$f")',
        '  id=$(printf "%02x:%02x:%s" $(((d >> 8) & 0xfff)) $(((d & 0xff) | ((d >> 12) & 0xfff00))) "$i")',
        '  while read -r _ _ _ _ pid dev _; do',
        '    [ "$dev" = "$id" ] || continue',
        '    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)',
        '    echo "held $f $pid $comm"',
        '  done < /proc/locks',
        "done",
        "true",
    ])


def parse_holders(output: str) -> tuple[Holder, ...]:
    """The probe's lines -> holders (one per lock file, the first holder seen)."""
    seen: dict[str, Holder] = {}
    for line in output.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 3 or parts[0] != "held" or parts[1] in seen:
            continue
        try:
            pid = int(parts[2])
        except ValueError:
            continue
        seen[parts[1]] = Holder(parts[1], pid, parts[3].strip() if len(parts) > 3 else "")
    return tuple(seen.values())


def render_waiting(host: str, holders: tuple[Holder, ...], waited: float, timeout: int) -> str:
    """The progress line: "h1: waiting for the apt lock /var/lib/dpkg/lock-frontend held by PID 812
    (unattended-upgr) 10s/120s"."""
    return f"{host}: waiting for the apt lock {holders[0].describe()} {waited:.0f}s/{timeout}s"


def render_timeout_error(host: str, holders: tuple[Holder, ...], timeout: int) -> tuple[str, str]:
    """(message, hint) once the wait is over and the lock is still held."""
    holder = holders[0]
    message = f"apt lock on {host} still held after {timeout} s: {holder.describe()}"
    what = (f"see what it is with `ps -o pid,etime,args -p {holder.pid}` on {host}"
            if holder.pid > 0 else f"find the holder with `lsof {holder.path}` on {host}")
    hint = (f"{what}; let it finish (unattended-upgrades can run for minutes) or stop it, then apply "
            f"again; {ENV_TIMEOUT}=SECONDS waits longer")
    return message, hint


def uses_apt(name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether an operation runs apt or dpkg (and so needs the locks free first)."""
    if name.startswith("apt."):
        return True
    if name != "server.shell":
        return False
    commands = kwargs.get("commands", ())
    text = "\n".join(commands if isinstance(commands, (list, tuple)) else [str(commands)])
    return "apt-get " in text or "dpkg -i" in text


def with_lock_timeout(name: str, kwargs: Mapping[str, Any], timeout: int) -> dict[str, Any]:
    """An apt operation's kwargs with `-o DPkg::Lock::Timeout=N` on its install/remove commands
    (pyinfra's apt.packages pastes extra_*_args into the apt-get line); shell operations get
    ENV_TIMEOUT in their environment for APT_GET."""
    out = dict(kwargs)
    option = f"-o DPkg::Lock::Timeout={int(timeout)}"
    if name == "apt.packages":
        for key in ("extra_install_args", "extra_uninstall_args"):
            out[key] = f"{out[key]} {option}" if out.get(key) else option
    elif name == "server.shell":
        out["_env"] = {**dict(out.get("_env") or {}), ENV_TIMEOUT: str(int(timeout))}
    return out
