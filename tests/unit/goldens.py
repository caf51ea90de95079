"""Golden-file comparison shared by the render tests.

Regenerate after an intended change with HOMELAB_UPDATE_GOLDEN=1 and review the diff like code.
"""
from __future__ import annotations

import os
from pathlib import Path


def golden(path: Path, text: str) -> None:
    if os.environ.get("HOMELAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with HOMELAB_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path} differs (HOMELAB_UPDATE_GOLDEN=1 rewrites it)"
