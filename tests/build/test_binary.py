"""The one-file executable builds and runs without a Python environment of its own.

Slow (~40 s to build), so it runs in the full suite (README test command / CI), and a
developer can skip it with `-m "not binary"`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.binary


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("pyinstaller", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pyinstaller is not installed (pip install -e '.[build]')")
    work = tmp_path_factory.mktemp("pyi")
    subprocess.run([str(Path(sys.executable).parent / "pyinstaller"), "--noconfirm", "--log-level", "ERROR",
                    "--distpath", str(work / "dist"), "--workpath", str(work / "work"),
                    str(ROOT / "build" / "homelab.spec")], check=True, cwd=ROOT / "build", timeout=600)
    exe = work / "dist" / "homelab"
    assert exe.exists()
    return exe


def clean_env() -> dict[str, str]:
    """No venv on PATH and no PYTHONPATH: the binary must carry everything."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root")}


def test_version(binary: Path) -> None:
    t0 = time.monotonic()
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("homelab ")
    print(f"binary: {binary.stat().st_size / 1e6:.1f} MB, --version in {time.monotonic() - t0:.2f} s")


def test_validate_example(binary: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(binary), "validate", str(ROOT / "config.example.yaml")], capture_output=True,
                         text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute:\n  machnes: []\n")
    out = subprocess.run([str(binary), "validate", str(bad)], capture_output=True, text=True, env=clean_env(),
                         timeout=60)
    assert out.returncode == 2 and "did you mean 'machines'?" in out.stderr


def test_worker_runs_inside_binary(binary: Path) -> None:
    """The frozen binary starts its own pyinfra worker (gevent, pyinfra ops) from itself."""
    out = subprocess.run([str(binary), "__pyinfra-worker"], input='{"hosts": [], "ops": {}}', capture_output=True,
                         text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"event": "done"' in out.stdout
