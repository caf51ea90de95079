"""A log file per run: every event and every traceback goes there, never to the terminal."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path


def log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "homelab" / "logs"


def start_run_log(command: str) -> tuple[Path, logging.Handler]:
    d = log_dir()
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{command}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    os.chmod(path, 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # on the root logger: library loggers (paramiko's transport thread) then write here
    # instead of Python's last-resort handler printing tracebacks on the terminal
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    logging.getLogger("homelab").setLevel(logging.DEBUG)
    return path, handler


def stop_run_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
