"""The static type check: mypy (pinned in the test extra) over homelab/ at zero errors.

Settings are in pyproject.toml's [tool.mypy] (strict, Python 3.11, missing stubs ignored per
module). ~7 s with a cold cache; the cache lives in the test's tmp dir so that two test runs
on one machine never write the same cache.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_homelab_type_checks_clean(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    out = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert out.stdout.startswith("Success: no issues found")
