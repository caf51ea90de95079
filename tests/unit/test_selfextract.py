"""The downloadable file's launcher (build/selfextract.py) around a stand-in tree: a shell
script in place of PyInstaller's one-dir build, so the launcher's own logic is tested in the
fast suite (tests/build/test_binary.py runs it around the real build)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def selfextract() -> ModuleType:
    spec = importlib.util.spec_from_file_location("selfextract", ROOT / "build" / "selfextract.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make(tmp_path: Path) -> Path:
    se = selfextract()
    tree = tmp_path / se.TREE
    (tree / "_internal").mkdir(parents=True)
    (tree / "_internal" / "data.txt").write_text("payload\n")
    exe = tree / "homelab"
    exe.write_text('#!/bin/sh\necho "ran $(dirname "$0") with $*"; cat "$(dirname "$0")/_internal/data.txt"\n')
    exe.chmod(0o755)
    return se.build(tree, tmp_path / "homelab")


def run(exe: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(cache.parent), "HOMELAB_CACHE_DIR": str(cache)}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=60)


def test_launcher_unpacks_once_and_passes_arguments(tmp_path: Path) -> None:
    exe = make(tmp_path)
    cache = tmp_path / "cache"
    first = run(exe, cache, "apply", "a b.yaml")
    assert first.returncode == 0, first.stderr
    (unpacked,) = list(cache.iterdir())
    assert first.stdout == f"ran {unpacked}/homelab.d with apply a b.yaml\npayload\n"
    marker = unpacked / "homelab.d" / "_internal" / "data.txt"
    marker.write_text("from the cache\n")  # a second start must not unpack again
    assert run(exe, cache, "x").stdout.endswith("from the cache\n")
    assert oct(unpacked.stat().st_mode & 0o777) == "0o700"  # the cache is the user's alone


def test_the_offset_points_at_the_payload(tmp_path: Path) -> None:
    se = selfextract()
    exe = make(tmp_path)
    data = exe.read_bytes()
    header = se.render_launcher("0" * 64)
    skip = int(header.decode().split("tail -c +", 1)[1].split()[0])
    assert data[skip - 1:skip + 1] == b"\x1f\x8b"  # gzip's magic right where tail starts
    assert len(header) == skip - 1


def test_same_tree_same_file(tmp_path: Path) -> None:
    """The payload has fixed owners and times: a rebuild of the same tree is the same file
    (the same cache dir), so a re-download does not unpack again."""
    import time

    se = selfextract()
    tree_file = make(tmp_path)
    time.sleep(1.1)  # gzip and tar record times in seconds
    again = se.build(tmp_path / se.TREE, tmp_path / "again")
    assert again.read_bytes() == tree_file.read_bytes()
