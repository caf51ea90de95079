"""Billing: prices from the /pricing shape, cost sums, budget verdicts. Pure."""
from __future__ import annotations

import pytest

from homelab.config.billing import BillingConfig
from homelab.config.hetzner import HetznerConfig, Server
from homelab.lab.fake_hcloud import FakeHcloud
from homelab.layers.billing import Seen, budget_monitor, diff_billing
from homelab.model import Health
from homelab.providers.pricing import Bill, Billable, Prices, bill, describe_change, parse_pricing

PRICES = Prices("EUR", {("cx22", "fsn1"): 4.51, ("cx32", "fsn1"): 8.09, ("cx22", "hel1"): 4.51},
                {"fsn1": 0.60, "hel1": 0.60}, 20.0)


def test_parse_pricing_reads_gross_monthly_prices() -> None:
    doc = FakeHcloud("t")._pricing()  # the stand-in answers in the API's documented shape
    p = parse_pricing(doc)
    assert p.currency == "EUR" and p.backup_percent == 20.0
    assert p.server_monthly[("cx22", "fsn1")] == pytest.approx(3.79 * 1.19)
    assert p.ipv4_monthly["nbg1"] == pytest.approx(0.50 * 1.19)


def test_cost_of_a_server_is_type_plus_ipv4_plus_backups() -> None:
    b = bill(PRICES, [Billable("a", "cx22", "fsn1"), Billable("b", "cx32", "fsn1", backups=True),
                      Billable("c", "cx22", "hel1", ipv4=False)])
    a, bb, c = b.items
    assert a.total == pytest.approx(5.11)
    assert bb.backups == pytest.approx(8.09 * 0.2) and bb.total == pytest.approx(8.09 * 1.2 + 0.6)
    assert c.total == pytest.approx(4.51)
    assert b.total == round(5.11 + 8.09 * 1.2 + 0.6 + 4.51, 2)


def test_unknown_prices_are_named_not_guessed() -> None:
    b = bill(PRICES, [Billable("x", "cx99", "fsn1")])
    assert b.total == 0 and b.unknown == ("x: no price for server type cx99 in fsn1",)


def test_change_line() -> None:
    now = bill(PRICES, [Billable("a", "cx22", "fsn1")])
    want = bill(PRICES, [Billable("a", "cx32", "fsn1")])
    assert describe_change(want, now) == "8.69 EUR/month (now 5.11 EUR, +3.58 EUR)"
    assert describe_change(now, want) == "5.11 EUR/month (now 8.69 EUR, -3.58 EUR)"


def hz(*servers: Server) -> HetznerConfig:
    return HetznerConfig(servers=servers)


def test_plan_over_budget_is_blocked_naming_total_and_budget() -> None:
    cfg = hz(Server("a", "cx32", "fsn1"), Server("b", "cx32", "fsn1", backups=True))
    plan = diff_billing(BillingConfig(budget=10.0), cfg, Seen(PRICES, ()))
    assert plan.blocked == ("monthly cost 19.00 EUR is over the budget of 10.00 EUR (billing.budget)",)
    assert plan.notes[0] == "monthly cost: 19.00 EUR/month (now 0.00 EUR, +19.00 EUR); budget 10.00 EUR"
    assert plan.notes[2] == "  b: cx32 in fsn1 8.09 + IPv4 0.60 + backups 1.62 = 10.31 EUR"
    assert not plan.changes


def test_plan_within_budget_and_change_against_existing() -> None:
    plan = diff_billing(BillingConfig(budget=20.0), hz(Server("a", "cx32", "fsn1")),
                        Seen(PRICES, (Billable("a", "cx22", "fsn1"),)))
    assert not plan.blocked
    assert plan.notes[0] == "monthly cost: 8.69 EUR/month (now 5.11 EUR, +3.58 EUR); budget 20.00 EUR"


def test_no_cloud_servers_cost_nothing() -> None:
    plan = diff_billing(BillingConfig(budget=0.0), None, Seen(None))
    assert plan.notes == ("monthly cost: 0.00 EUR/month (now 0.00 EUR, +0.00 EUR); budget 0.00 EUR",)
    assert not plan.blocked


def test_currency_mismatch_is_warned() -> None:
    plan = diff_billing(BillingConfig(currency="USD"), hz(), Seen(PRICES, ()))
    assert "Hetzner bills this project in EUR, billing.currency is USD" in plan.warnings[0]


@pytest.mark.parametrize("total,health", [(7.99, Health.OK), (8.0, Health.WARN), (10.0, Health.WARN),
                                          (10.01, Health.FAIL)])
def test_budget_monitor_thresholds(total: float, health: Health) -> None:
    from homelab.providers.pricing import Priced

    current = Bill((Priced("a", "t", "l", total, 0, 0),), (), "EUR")
    m = budget_monitor(BillingConfig(budget=10.0), current)
    assert m.health is health and m.reason.startswith(f"{total:.2f} EUR of 10.00 EUR")


def test_budget_monitor_without_budget() -> None:
    m = budget_monitor(BillingConfig(), Bill(currency="EUR"))
    assert m.health is Health.OK and m.reason == "0.00 EUR (no budget set)"
