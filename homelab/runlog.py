"""A log file per run: every event and every traceback goes there, never to the terminal.

Logs are rotated: starting a run keeps the newest KEEP_LOGS and deletes older ones, so a
cron job running `homelab status` every minute does not fill the disk. A log directory that
cannot be written is no reason to refuse a command: the run goes on without a log and the
caller says so.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

KEEP_LOGS = 100  # newest run logs kept (each is a few KB)


def log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "homelab" / "logs"


def start_run_log(command: str) -> tuple[Path | None, logging.Handler | None, str]:
    """(path, handler, "") for a new run log, or (None, None, why) when none can be written."""
    d = log_dir()
    path = d / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{command}.log"
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        rotate_logs(d, KEEP_LOGS - 1)  # room for this run's
        # created 0600 from the start: a log may name hosts and users, never for other eyes
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        where = exc.filename or d
        return None, None, f"cannot write {where} ({exc.strerror}); set XDG_STATE_HOME to a writable directory"
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # on the root logger: library loggers (paramiko's transport thread) then write here
    # instead of Python's last-resort handler printing tracebacks on the terminal
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    logging.getLogger("homelab").setLevel(logging.DEBUG)
    return path, handler, ""


def rotate_logs(d: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` run logs in `d` (names start with the time, so they sort
    oldest first); returns what was deleted. A log another run deletes first is not an error."""
    logs = sorted(p for p in d.glob("*.log") if p.is_file())
    gone = logs[:max(0, len(logs) - keep)]
    for p in gone:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
    return gone


def stop_run_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
