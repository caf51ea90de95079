"""Start-up: the compiled methods of dataclasses, kept between runs.

`@dataclass` writes each class's __init__, __repr__, __eq__, __hash__ (frozen: also
__setattr__ and __delattr__) as source text and compiles it when the module is imported:
~1.4 ms a frozen class on a 2-core VM, so ~0.26 s, half of every command's start-up, for
homelab's ~180 classes. Python 3.12 and 3.13 are no faster at it. The text is the same at
every run, so its compiled code is kept in one file (marshal, by this Python's bytecode magic)
and compiled only when it is new.

dataclasses itself is not changed: `install` gives its module an `exec` of its own (found
before the builtin) that looks the text up first. A hit runs the very code `exec(text)` would
compile: the same text, the same flags (none inherited: dataclasses.py has no __future__
imports), the same "<string>" file name. A cache that cannot be read or written costs only
the compiling; one that is not the user's own, or that others may write, is not read.
"""
from __future__ import annotations

import atexit
import builtins
import dataclasses
import importlib.util
import marshal
import os
from types import CodeType
from typing import Any

MAX_BYTES = 4 << 20  # past this (classes of many versions and programs) keep only this run's
_codes: dict[str, CodeType] = {}
_used: set[str] = set()
_state = {"loaded": False, "new": 0}


def cache_file() -> str:
    """In homelab's cache folder, the one the executable unpacks itself into (build/selfextract.py)."""
    folder = os.environ.get("HOMELAB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "homelab")
    return os.path.join(folder, f"classes-{importlib.util.MAGIC_NUMBER.hex()}.marshal")


def _trusted(path: str) -> bool:
    """Loaded code runs: only a file (and folder) of this user that nobody else may write."""
    try:
        folder, file = os.stat(os.path.dirname(path)), os.stat(path)
    except OSError:
        return False
    return all(st.st_uid == os.geteuid() and not st.st_mode & 0o022 for st in (folder, file)) \
        and file.st_size <= MAX_BYTES


def _load() -> None:
    _state["loaded"] = True
    path = cache_file()
    if not _trusted(path):
        return
    try:
        with open(path, "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return
    if isinstance(data, dict):
        _codes.update((k, v) for k, v in data.items() if isinstance(k, str) and isinstance(v, CodeType))


def _exec(source: Any, globals: Any = None, locals: Any = None) -> None:
    if isinstance(source, str):
        if not _state["loaded"]:
            _load()
        code = _codes.get(source)
        _used.add(source)
        if code is None:
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _state["new"] += 1
        source = code
    builtins.exec(source, globals, locals)


def save() -> None:
    """Write what this run compiled anew (atomically, 0600); never fails the command."""
    if not _state["new"]:
        return
    import tempfile

    path = cache_file()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        data = marshal.dumps(_codes)
        if len(data) > MAX_BYTES:
            data = marshal.dumps({k: v for k, v in _codes.items() if k in _used})
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".classes-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _state["new"] = 0
    except (OSError, ValueError):
        pass


def install() -> None:
    """Before the first dataclass is made (homelab/__init__.py). HOMELAB_CLASS_CACHE=0 turns it off."""
    if os.environ.get("HOMELAB_CLASS_CACHE") == "0" or getattr(dataclasses, "exec", None) is _exec:
        return
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    atexit.register(save)

