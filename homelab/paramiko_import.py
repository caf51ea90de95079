"""Importing paramiko without what homelab never uses: every run that reaches a host pays it.

- `invoke` (and with it unittest.mock and asyncio, ~30 ms): paramiko imports it only for the
  ssh_config "Match exec" feature, and skips that feature without it.
- `importlib.metadata` (with email, zipfile, csv, inspect: ~11-16 ms): paramiko 4 imports it
  only to read its own version, `metadata.version("paramiko")`, for the banner it sends. While
  paramiko is imported, a stand-in answers that one question from the name of paramiko's
  dist-info folder (`paramiko-4.0.0.dist-info`, the same record metadata reads) and hands every
  other question, or a folder it cannot find, to the real module.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from contextlib import contextmanager
from typing import Any, Iterator

_REAL = "importlib.metadata"


class _OwnVersion(types.ModuleType):
    def __init__(self, versions: dict[str, str]) -> None:
        super().__init__(_REAL)
        self._versions = versions

    def version(self, name: str) -> str:
        found = self._versions.get(name)
        return found if found is not None else _real().version(name)

    def __getattr__(self, name: str) -> Any:  # anything else: the real module's answer
        return getattr(_real(), name)


def _real() -> types.ModuleType:
    if isinstance(sys.modules.get(_REAL), _OwnVersion):
        del sys.modules[_REAL]
    import importlib.metadata

    return importlib.metadata


def dist_version(package: str) -> str | None:
    """The version in the name of `package`'s dist-info folder beside it, if there is exactly one."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    where = os.path.dirname(next(iter(spec.submodule_search_locations)))
    try:
        names = [n for n in os.listdir(where) if n.startswith(f"{package}-") and n.endswith(".dist-info")]
    except OSError:
        return None
    return names[0][len(package) + 1:-len(".dist-info")] if len(names) == 1 else None


@contextmanager
def lean_paramiko_import() -> Iterator[None]:
    """Around `import paramiko` (homelab/ssh.py)."""
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
    if "paramiko" in sys.modules or _REAL in sys.modules:
        yield
        return
    version = dist_version("paramiko")
    if version is not None:
        sys.modules[_REAL] = _OwnVersion({"paramiko": version})
    try:
        yield
    finally:
        if isinstance(sys.modules.get(_REAL), _OwnVersion):
            del sys.modules[_REAL]
