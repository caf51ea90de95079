"""config.example.yaml loads clean and documents every config field."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator

from homelab.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
# dataclass fields whose YAML key differs (a Python keyword, or a clearer word in code)
YAML_KEY = {"source": "from", "also_on": "machines"}


def field_names(obj: Any) -> Iterator[str]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name.startswith("_") or not f.init or f.metadata.get("internal"):  # not a config key
                continue
            value = getattr(obj, f.name)
            if value is None:
                continue  # an optional sub-section the example does not set (checked by its own test)
            yield f.name
            yield from field_names(value)
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from field_names(item)


def test_example_loads_clean() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.machines, "the example shows at least one machine"


def test_every_field_is_documented() -> None:
    cfg = load_config(EXAMPLE)
    text = EXAMPLE.read_text()
    missing = sorted({name for section in cfg.sections.values() for name in field_names(section)
                      if f"{YAML_KEY.get(name, name)}:" not in text})
    assert not missing, f"config.example.yaml does not show: {missing}"


def test_every_key_has_a_comment() -> None:
    """Each key line is preceded by a comment line (or is a continuation of a list item)."""
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or ":" not in stripped:
            continue
        prev = lines[i - 1].strip() if i else ""
        in_item = stripped.startswith("- ") or (prev.startswith("- #") and True)
        assert prev.startswith("#") or prev.startswith("- #") or in_item or _repeat_item(lines, i), \
            f"line {i + 1} has no comment: {line}"


def _repeat_item(lines: list[str], i: int) -> bool:
    """Keys of a second list item repeat documented keys: no comment needed."""
    j = i
    while j > 0 and not lines[j].strip().startswith("- "):
        j -= 1
    return j > 0 and not lines[j].strip().startswith("- #") and any(
        ln.strip().startswith("- #") for ln in lines[:j])
