"""The dataclass method cache (homelab/class_cache.py): the same code as compiling, reused
between runs, and never trusting a file others could have written."""
from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from homelab import class_cache

SOURCE = '''
import dataclasses
from typing import Optional

@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    label: Optional[str] = None
    tags: tuple = ()
    extra: list = dataclasses.field(default_factory=list, compare=False)
'''


def _make(cached: bool) -> type:
    saved = dataclasses.__dict__.pop("exec", None)  # the cache's exec, when installed
    try:
        if cached:
            dataclasses.exec = class_cache._exec  # type: ignore[attr-defined]
        ns: dict[str, object] = {}
        exec(compile(SOURCE, "<point>", "exec", dont_inherit=True), ns)
        return ns["Point"]  # type: ignore[return-value]
    finally:
        dataclasses.__dict__.pop("exec", None)
        if saved is not None:
            dataclasses.exec = saved  # type: ignore[attr-defined]


def test_a_class_made_through_the_cache_is_the_class_compiling_makes() -> None:
    plain, cached, again = _make(False), _make(True), _make(True)  # `again`: a cache hit
    for cls in (cached, again):
        for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
            a, b = getattr(plain, name).__code__, getattr(cls, name).__code__
            assert (a.co_code, a.co_consts, a.co_names, a.co_varnames, a.co_filename) == \
                   (b.co_code, b.co_consts, b.co_names, b.co_varnames, b.co_filename), name
        # annotations are the types, not strings: no __future__ flag leaked in from our module
        assert cls.__init__.__annotations__ == plain.__init__.__annotations__
        assert str(inspect.signature(cls)) == str(inspect.signature(plain))
        p = cls(1, "a")
        assert repr(p) == "Point(x=1, label='a', tags=(), extra=[])" and p == cls(1, "a") and p != cls(2)
        assert hash(cls(1, "a", (1,))) == hash(plain(1, "a", (1,)))
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 3  # type: ignore[misc]
        assert cls(1).extra is not cls(1).extra  # default_factory still runs per instance


def _child(cache: Path, env: dict[str, str] | None = None) -> int:
    """A fresh process importing homelab's classes: how many methods it had to compile."""
    env = {k: v for k, v in {**os.environ, "XDG_CACHE_HOME": str(cache), **(env or {})}.items()
           if k != "HOMELAB_CACHE_DIR"}
    code = ("import homelab.events, homelab.claims, homelab.model\n"
            "from homelab import class_cache\nprint(class_cache._state['new'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    return int(out.strip())


def test_the_second_run_compiles_nothing_and_a_file_others_may_write_is_not_read(tmp_path: Path) -> None:
    assert _child(tmp_path) > 50  # the first run compiles (and saves at exit)
    path = tmp_path / "homelab" / Path(class_cache.cache_file()).name
    assert path.stat().st_mode & 0o777 == 0o600 and (tmp_path / "homelab").stat().st_mode & 0o777 == 0o700
    assert _child(tmp_path) == 0  # read back: nothing compiled
    path.chmod(0o666)  # someone else could have written it: not read, compiled again
    assert _child(tmp_path) > 50
    path.chmod(0o600)
    path.write_bytes(b"\xff not marshal")  # damaged: compiled again, and saved whole
    assert _child(tmp_path) > 50 and _child(tmp_path) == 0


def test_it_can_be_turned_off(tmp_path: Path) -> None:
    code = "import homelab, dataclasses; print(hasattr(dataclasses, 'exec'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HOMELAB_CLASS_CACHE": "0"}).stdout
    assert out.strip() == "False" and not (tmp_path / "homelab").exists()


def test_a_file_grown_too_big_keeps_only_what_this_run_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import marshal

    monkeypatch.setenv("HOMELAB_CACHE_DIR", str(tmp_path / "homelab"))
    code = compile("x = 1", "<string>", "exec")
    monkeypatch.setattr(class_cache, "_codes", {"used": code, "old": code})
    monkeypatch.setattr(class_cache, "_used", {"used"})
    monkeypatch.setattr(class_cache, "_state", {"loaded": True, "new": 1})
    monkeypatch.setattr(class_cache, "MAX_BYTES", 40)  # both entries are more than this
    class_cache.save()
    assert set(marshal.loads(Path(class_cache.cache_file()).read_bytes())) == {"used"}
