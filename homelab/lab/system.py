"""Small outer-machine helpers: commands, processes, mounts, files in a container root, locks."""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from homelab.lab.config import LabError, unescape_mount

log = logging.getLogger("homelab.lab")


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float | None = 600, what: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with captured output; on failure raise LabError with its stderr tail."""
    proc = subprocess.run(list(argv), text=True, capture_output=True, input=input, timeout=timeout, cwd=cwd)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"{what or argv[0]}: `{' '.join(argv[:4])}` failed (exit {proc.returncode}): "
                       + " | ".join(tail))
    return proc


def run_logged(argv: Sequence[str], logfile: Path, *, what: str, timeout: float = 1800) -> None:
    """Run a long command with its output in `logfile`; on failure quote the log's tail."""
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        rc = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            timeout=timeout).returncode
    if rc != 0:
        tail = logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        raise LabError(f"{what} failed (exit {rc}); end of {logfile}:\n" + "\n".join(tail),
                       f"see {logfile}")


class Timer:
    """Seconds since creation, for progress lines."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __str__(self) -> str:
        return f"{time.monotonic() - self.start:.1f}s"


# ------------------------------------------------------------------ processes ----

def proc_comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def proc_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def pid_alive(pid: int, comm: str | None = None) -> bool:
    """True if `pid` runs and, when given, its comm is `comm`.

    A zombie counts as gone: a stopped nspawn stays one until its parent (perhaps a CLI
    that has exited) is reaped. Never waitpid() here: the PID may be another thread's child.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rpartition(")")[2].split()[0] == "Z":
        return False
    return comm is None or proc_comm(pid) == comm


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no `ps` needed)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_gone(pid: int, timeout: float, comm: str | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid, comm):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --------------------------------------------------------------------- mounts ----

def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (the order to unmount them)."""
    prefix = str(path.absolute()).rstrip("/") + "/"
    with open("/proc/self/mounts", encoding="utf-8") as f:
        points = [unescape_mount(line.split()[1]) for line in f]
    found = {p for p in points if (p + "/").startswith(prefix)}
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def is_mounted(path: Path) -> bool:
    return str(path.absolute()) in mounts_under(path)


def umount(point: str | Path) -> None:
    """Unmount; fall back to a lazy unmount when something still holds it."""
    if run(["umount", str(point)], check=False).returncode != 0:
        run(["umount", "-l", str(point)], check=False)


def umount_all(path: Path) -> None:
    for point in mounts_under(path):
        umount(point)


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount (that would delete a base or a host's files)."""
    if not path.exists():
        return
    umount_all(path)
    left = mounts_under(path)
    if left:
        raise LabError(f"cannot remove {path}: still mounted: {', '.join(left)}",
                       "stop whatever uses it, then run `homelab lab down` again")
    shutil.rmtree(path)


# ----------------------------------------------------- files in a container root ----

def root_path(root: Path, rel: str) -> Path:
    """`rel` inside the container root, refusing a path that climbs out of it."""
    path = root / rel.lstrip("/")
    if ".." in Path(rel).parts:
        raise ValueError(f"path climbs out of the root: {rel}")
    return path


def write_root_file(root: Path, rel: str, text: str, mode: int = 0o644,
                    owner: tuple[int, int] | None = None) -> None:
    """Write a file in a container root from outside without following a symlink there.

    A symlink in the root (e.g. /etc/resolv.conf -> /run/...) is absolute for the container;
    opened from outside it would point into the outer machine.
    """
    path = root_path(root, rel)
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(f".{path.name}.lab-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    if owner:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def make_root_dir(root: Path, rel: str, mode: int = 0o755, owner: tuple[int, int] | None = None) -> None:
    path = root_path(root, rel)
    if path.is_symlink():
        raise LabError(f"{path} is a symlink; refusing to write through it")
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)


# ---------------------------------------------------------------------- locks ----

@contextmanager
def file_lock(path: Path, what: str) -> Iterator[None]:
    """Exclusive fcntl lock; logs once when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            log.info("waiting for another process working on %s (lock %s)", what, path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock
