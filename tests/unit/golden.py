"""Golden-file comparison shared by the render tests (HOMELAB_UPDATE_GOLDEN=1 rewrites them)."""
from __future__ import annotations

import os
from pathlib import Path

GOLDEN_ROOT = Path(__file__).resolve().parents[1] / "golden"


def assert_golden(path: Path, text: str) -> None:
    if os.environ.get("HOMELAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with HOMELAB_UPDATE_GOLDEN=1"
    assert text == path.read_text()
