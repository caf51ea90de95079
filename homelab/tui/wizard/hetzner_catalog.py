"""Hetzner Cloud server types and locations for the wizard's pick lists — DISPLAY DATA ONLY.

!!! These prices are a static, approximate copy (EUR per month, excl. VAT, EU locations,
as listed by Hetzner in 2025), shown only to help pick a size. Nothing is computed or
enforced from them: `homelab plan` reads the real prices from Hetzner's pricing API
(homelab.providers.pricing) and the billing layer checks the budget against those.
"""
from __future__ import annotations

from dataclasses import dataclass

PRICES_NOTE = "approx. list prices, EUR/month excl. VAT — plan shows Hetzner's live prices"


@dataclass(frozen=True)
class ServerType:
    name: str
    cpu: str
    memory_gb: int
    disk_gb: int
    eur_month: float  # approximate, display only
    arch: str = "x86"


SERVER_TYPES: tuple[ServerType, ...] = (
    ServerType("cx22", "2 vCPU", 4, 40, 3.79),
    ServerType("cx32", "4 vCPU", 8, 80, 6.80),
    ServerType("cx42", "8 vCPU", 16, 160, 16.40),
    ServerType("cx52", "16 vCPU", 32, 320, 32.40),
    ServerType("cax11", "2 vCPU", 4, 40, 3.79, "arm"),
    ServerType("cax21", "4 vCPU", 8, 80, 6.49, "arm"),
    ServerType("cax31", "8 vCPU", 16, 160, 12.49, "arm"),
    ServerType("cax41", "16 vCPU", 32, 320, 24.49, "arm"),
    ServerType("cpx11", "2 vCPU", 2, 40, 4.35),
    ServerType("cpx21", "3 vCPU", 4, 80, 7.55),
    ServerType("cpx31", "4 vCPU", 8, 160, 13.60),
    ServerType("ccx13", "2 dedicated", 8, 80, 12.49),
)

LOCATIONS: tuple[tuple[str, str], ...] = (
    ("fsn1", "Falkenstein DE"),
    ("nbg1", "Nuremberg DE"),
    ("hel1", "Helsinki FI"),
    ("ash", "Ashburn US"),
    ("hil", "Hillsboro US"),
    ("sin", "Singapore"),
)


def type_label(t: ServerType) -> str:
    """"cx22 ~€3.79/mo 2 vCPU 4 GB x86" — price first (it is what a narrow list keeps); approximate."""
    return f"{t.name:<5} ~€{t.eur_month:>5.2f}/mo {t.cpu} {t.memory_gb} GB {t.arch}"


def type_choices() -> tuple[tuple[str, str], ...]:
    return tuple((type_label(t), t.name) for t in SERVER_TYPES)


def location_choices() -> tuple[tuple[str, str], ...]:
    return tuple((f"{code:<4} {where}", code) for code, where in LOCATIONS)


def approx_monthly(type_names: list[str]) -> float:
    """Approximate sum for display ("about €7.58/month"); unknown types count 0."""
    prices = {t.name: t.eur_month for t in SERVER_TYPES}
    return round(sum(prices.get(n, 0.0) for n in type_names), 2)
