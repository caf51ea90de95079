"""State: what homelab learned or generated (host keys, addresses, public keys, ids).

One JSON file beside the config, mode 0600, versioned. Written atomically: temp file in the
same directory, fsync, rename; the previous version is kept as `.prev`, so a crash mid-write
can never leave a half file and a bad run can be undone by hand. Secrets never go in here.
A lock file next to it makes a second apply fail at once, naming who holds the lock.
"""
from __future__ import annotations

import copy
import errno
import fcntl
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from homelab.errors import HomelabError, LockedError

STATE_VERSION = 1


class State:
    """In-memory state with per-section dicts; `save()` writes it atomically."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data or {"version": STATE_VERSION, "sections": {}}
        self._lock = threading.RLock()  # hosts work in parallel threads
        self._saved = copy.deepcopy(self.data)

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            prev = path.with_name(path.name + ".prev")
            raise HomelabError(
                f"state file {path} is unreadable: {exc}",
                f"restore the previous version: cp {prev} {path}",
            ) from None
        version = data.get("version")
        if version != STATE_VERSION:
            raise HomelabError(
                f"state file {path} has version {version}, this homelab reads version {STATE_VERSION}",
                "use the homelab release that wrote it, or upgrade homelab",
            )
        data.setdefault("sections", {})
        return cls(path, data)

    def section(self, name: str) -> dict[str, Any]:
        """The mutable dict of one layer (created on first use)."""
        with self._lock:
            sections: dict[str, dict[str, Any]] = self.data["sections"]
            return sections.setdefault(name, {})

    def host(self, name: str) -> dict[str, Any]:
        """Per-host facts shared by all layers (host key, address, facts)."""
        with self._lock:
            hosts: dict[str, dict[str, Any]] = self.data.setdefault("hosts", {})
            return hosts.setdefault(name, {})

    def update_host(self, name: str, **values: Any) -> None:
        with self._lock:
            self.host(name).update(values)

    def forget_login(self, name: str) -> None:
        """Drop the login an earlier apply recorded (`LoginAs`): the config's own applies again."""
        with self._lock:
            info = self.host(name)
            info.pop("login_user", None)
            info.pop("login_port", None)

    @property
    def dirty(self) -> bool:
        with self._lock:
            return self.data != self._saved

    def save(self) -> None:
        with self._lock:
            if not self.dirty and self.path.exists():
                return
            text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
            write_atomic(self.path, text)
            self._saved = copy.deepcopy(self.data)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """temp + fsync + rename in the same directory; keeps the old file as .prev.

    `path` exists at every instant (a kill -9 anywhere leaves the old or the new version):
    .prev is made as a second name of the old file, never by moving it away first."""
    try:
        _write_atomic(path, text, mode)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        mount = mount_of(path.parent)
        raise HomelabError(f"no space left on {mount} on this machine: {path} not written (the previous version "
                           "stays, nothing half-written left)",
                           f"free space on {mount} (`df -h {mount}`), then run again") from exc


def mount_of(directory: Path) -> Path:
    """The mount point that holds `directory`."""
    p = directory.resolve()
    while not os.path.ismount(p) and p.parent != p:
        p = p.parent
    return p


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # a killed writer's leftovers (writers hold the run lock)
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if path.exists():
            prev = path.with_name(path.name + ".prev")
            linked = path.with_name(f".{path.name}.{os.getpid()}.prev.tmp")
            try:
                os.link(path, linked)  # the old version under a second name; `path` stays
            except OSError:  # a filesystem without hard links
                shutil.copy2(path, linked)
            os.replace(linked, prev)
            linked.unlink(missing_ok=True)  # rename(2) does nothing if prev already is this file (a kill between renames)
            os.chmod(prev, mode)
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if tmp.exists():
            tmp.unlink()


class RunLock:
    """An exclusive, non-blocking lock beside the state file, naming its holder."""

    def __init__(self, state_path: Path) -> None:
        self.path = state_path.with_name(state_path.name.replace(".state.json", "") + ".state.lock")
        self.fd: int | None = None

    def acquire(self, command: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"another homelab run holds {self.path}: {holder}",
                "wait for it to finish; if that process is gone the lock is free already",
            ) from None
        info = f"pid {os.getpid()} on {socket.gethostname()} ({command}, since {time.strftime('%H:%M:%S')})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
