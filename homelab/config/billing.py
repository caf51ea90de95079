"""`billing:` (layer -1): what the cloud part of the config may cost per month."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from homelab.config.reader import Section

CURRENCIES = ("EUR", "USD")


@dataclass(frozen=True)
class BillingConfig:
    budget: float | None = None  # per month, in `currency`; None: show the cost, never block
    currency: str = "EUR"  # must match the currency Hetzner bills the project in


def parse_billing(sec: Section) -> BillingConfig:
    budget = sec.number("budget", None, lo=0.0)
    currency = sec.text("currency", "EUR", choices=CURRENCIES)
    sec.done(["budget", "currency"])
    return BillingConfig(budget=budget, currency=currency or "EUR")


def register(sections: dict[str, Any], compute_extras: dict[str, Callable[..., Any]]) -> None:
    # replace keeps the layer number schema.py owns; no import of schema (it imports us)
    sections["billing"] = dataclasses.replace(sections["billing"], parser=parse_billing)
