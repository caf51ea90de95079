"""`billing:` (layer -1): what the cloud part of the config may cost per month."""
from __future__ import annotations

from dataclasses import dataclass

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
