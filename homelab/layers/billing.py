"""Layer -1, billing: what the cloud part of the config costs per month, before anything is bought.

observe reads Hetzner's prices and our labelled servers (no API call at all when the config
has no cloud servers); diff is pure: the bill of what the config asks for, against the bill
of what exists, against the budget. Over budget blocks the plan, and with it every layer
above (the engine stops at a blocked layer).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from homelab.claims import NeedsVolume
from homelab.config.billing import BillingConfig
from homelab.config.hetzner import HetznerConfig, volume_name
from homelab.layers.base import Layer, Observed, RunContext
from homelab.model import Health, LayerPlan, Monitor
from homelab.probe import ProbeResult
from homelab.providers.pricing import (
    Bill, Billable, BillableVolume, Prices, bill, describe_change, money, parse_pricing,
)

WARN_AT = 0.8  # share of the budget from which status warns


@dataclass(frozen=True)
class Seen:
    prices: Prices | None  # None: nothing in the cloud, nothing asked
    existing: tuple[Billable, ...] = ()
    existing_volumes: tuple[BillableVolume, ...] = ()


def wanted_items(hetzner: HetznerConfig | None) -> list[Billable]:
    if hetzner is None:
        return []
    return [Billable(s.name, s.type, s.location, s.backups) for s in hetzner.servers]


def wanted_volumes(claims: Sequence[NeedsVolume]) -> list[BillableVolume]:
    return [BillableVolume(volume_name(c.host, c.disk), c.size_gb) for c in claims]


def empty_bill(currency: str) -> Bill:
    return Bill(currency=currency)


def diff_billing(cfg: BillingConfig, hetzner: HetznerConfig | None, seen: Seen,
                 volumes: Sequence[NeedsVolume] = ()) -> LayerPlan:
    """Pure: the plan's cost lines, warnings, and the budget verdict. `volumes`: the disks'
    claims for Hetzner volumes."""
    if seen.prices is None:
        wanted = current = empty_bill(cfg.currency)
    else:
        wanted = bill(seen.prices, wanted_items(hetzner), wanted_volumes(volumes))
        current = bill(seen.prices, seen.existing, seen.existing_volumes)
    notes = [f"monthly cost: {describe_change(wanted, current)}"]
    for item in wanted.items:
        extra = f" + backups {item.backups:.2f}" if item.backups else ""
        notes.append(f"  {item.name}: {item.type} in {item.location} {item.server:.2f} + IPv4 {item.ipv4:.2f}{extra}"
                     f" = {money(item.total, wanted.currency)}")
    for vol in wanted.volumes:
        notes.append(f"  volume {vol.name}: {vol.size_gb} GB = {money(vol.total, wanted.currency)}")
    warnings = list(wanted.unknown) + [f"existing {u}" for u in current.unknown]
    if seen.prices is not None and seen.prices.currency != cfg.currency:
        warnings.append(f"Hetzner bills this project in {seen.prices.currency}, billing.currency is {cfg.currency}: "
                        "the budget is compared as if they were the same")
    blocked: list[str] = []
    if cfg.budget is not None:
        notes[0] += f"; budget {money(cfg.budget, cfg.currency)}"
        if wanted.total > cfg.budget + 1e-9:
            blocked.append(f"monthly cost {money(wanted.total, wanted.currency)} is over the budget of "
                           f"{money(cfg.budget, cfg.currency)} (billing.budget)")
    return LayerPlan("billing", notes=tuple(notes), warnings=tuple(warnings), blocked=tuple(blocked),
                     unchanged=(f"{len(wanted.items)} server(s), {len(wanted.volumes)} volume(s) priced",))


def budget_monitor(cfg: BillingConfig, current: Bill) -> Monitor:
    """Pure: current cost of our resources against the budget (WARN from 80 %, FAIL over)."""
    cost = money(current.total, current.currency)
    if cfg.budget is None:
        return Monitor("billing", "cloud", "monthly cost", Health.OK, f"{cost} (no budget set)")
    share = current.total / cfg.budget if cfg.budget > 0 else (0.0 if current.total == 0 else float("inf"))
    health = Health.FAIL if share > 1.0 else Health.WARN if share >= WARN_AT else Health.OK
    pct = "" if share == float("inf") else f", {share * 100:.0f} %"
    return Monitor("billing", "cloud", "monthly cost", health, f"{cost} of {money(cfg.budget, cfg.currency)}{pct}")


class BillingLayer(Layer):
    name: ClassVar[str] = "billing"

    @staticmethod
    def _config(ctx: RunContext) -> BillingConfig:
        return ctx.config.get("billing") or BillingConfig()

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("billing") is not None or ctx.config.compute.hetzner is not None

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        hetzner: HetznerConfig | None = ctx.config.compute.hetzner
        if hetzner is None:
            return Observed(hosts=probed, api=Seen(None))
        from homelab.providers.hcloud_api import open_api  # lazy: no hcloud import without cloud servers

        api = open_api(ctx.secret(ctx.config.privilege.token_source), ctx.options.api_endpoint, hetzner.api_endpoint)
        prices = parse_pricing(api.pricing())
        existing = tuple(Billable(s.name, s.type, s.location, s.backups, ipv4=s.ipv4 is not None)
                         for s in api.list_servers(hetzner.selector()))
        volumes = tuple(BillableVolume(v.name, v.size_gb) for v in api.list_volumes(hetzner.selector()))
        return Observed(hosts=probed, api=Seen(prices, existing, volumes))

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        return diff_billing(self._config(ctx), ctx.config.compute.hetzner, observed.api,
                            ctx.config.claims.of(NeedsVolume))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        seen: Any = observed.api
        cfg = self._config(ctx)
        current = (bill(seen.prices, seen.existing, seen.existing_volumes) if seen.prices is not None
                   else empty_bill(cfg.currency))
        return [budget_monitor(cfg, current)]
