"""A DNS record set as homelab plans it: plain values, no provider library.

Apart from `hcloud_zones` so planning the ingress layer's records does not import hcloud
(~0.2 s of every no-op apply, which talks to no cloud when the config has no DNS zone).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class RRSet:
    name: str  # relative to the zone, "@" for the apex
    type: str
    values: tuple[str, ...]  # sorted
    ttl: int | None = None  # None: the zone's default
    labels: Mapping[str, str] = field(default_factory=dict)
