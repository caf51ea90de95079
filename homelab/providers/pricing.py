"""Hetzner prices and what a set of servers costs per month. Pure: JSON in, numbers out.

Prices come from the API's `/pricing` (gross, i.e. with the VAT of the project's
account, since that is what the person pays). A server costs its type's monthly price in
its location, plus its primary IPv4, plus backups (a percentage of the server price, 20 %
today). Hetzner bills hourly up to the monthly price, so the monthly price is the most a
server can cost in a month: the right number to hold against a budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from homelab.errors import HomelabError


@dataclass(frozen=True)
class Prices:
    currency: str
    server_monthly: Mapping[tuple[str, str], float]  # (type, location) -> gross per month
    ipv4_monthly: Mapping[str, float]  # location -> gross per month for a primary IPv4
    backup_percent: float = 20.0
    volume_gb_monthly: float | None = None  # gross per GB and month, one price in every location


@dataclass(frozen=True)
class Priced:
    """One server's share of the bill."""

    name: str
    type: str
    location: str
    server: float
    ipv4: float
    backups: float

    @property
    def total(self) -> float:
        return self.server + self.ipv4 + self.backups


@dataclass(frozen=True)
class PricedVolume:
    """One volume's share of the bill."""

    name: str
    size_gb: int
    total: float


@dataclass(frozen=True)
class Bill:
    items: tuple[Priced, ...] = ()
    unknown: tuple[str, ...] = ()  # "web-1: no price for cx99 in fsn1"
    currency: str = "EUR"
    volumes: tuple[PricedVolume, ...] = ()

    @property
    def total(self) -> float:
        return round(sum(i.total for i in self.items) + sum(v.total for v in self.volumes), 2)


@dataclass(frozen=True)
class Billable:
    """What is priced: a server type in a location, with or without IPv4 and backups."""

    name: str
    type: str
    location: str
    backups: bool = False
    ipv4: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BillableVolume:
    """A Hetzner volume: billed by its size, per GB and month."""

    name: str
    size_gb: int


def _gross(price: Mapping[str, Any], what: str) -> float:
    try:
        return float(price["price_monthly"]["gross"])
    except (KeyError, TypeError, ValueError):
        raise HomelabError(f"read Hetzner prices: {what} has no monthly gross price",
                           "the pricing API answered in an unexpected shape") from None


def parse_pricing(doc: Mapping[str, Any]) -> Prices:
    """`doc` is the JSON body of GET /pricing."""
    p = doc.get("pricing")
    if not isinstance(p, Mapping):
        raise HomelabError("read Hetzner prices: no 'pricing' in the answer", "is api_endpoint the Hetzner Cloud API?")
    servers: dict[tuple[str, str], float] = {}
    for st in p.get("server_types") or []:
        for price in st.get("prices") or []:
            servers[(st["name"], price["location"])] = _gross(price, f"server type {st['name']}")
    ipv4: dict[str, float] = {}
    for ip in p.get("primary_ips") or []:
        if ip.get("type") == "ipv4":
            for price in ip.get("prices") or []:
                ipv4[price["location"]] = _gross(price, "primary IPv4")
    try:
        pct = float((p.get("server_backup") or {}).get("percentage", 20.0))
    except (TypeError, ValueError):
        pct = 20.0
    try:
        volume: float | None = float(p["volume"]["price_per_gb_month"]["gross"])
    except (KeyError, TypeError, ValueError):
        volume = None  # named as unknown by `bill` when a volume is asked for
    return Prices(currency=str(p.get("currency", "EUR")), server_monthly=servers, ipv4_monthly=ipv4,
                  backup_percent=pct, volume_gb_monthly=volume)


def price_server(prices: Prices, item: Billable) -> Priced | None:
    base = prices.server_monthly.get((item.type, item.location))
    if base is None:
        return None
    ip = prices.ipv4_monthly.get(item.location, 0.0) if item.ipv4 else 0.0
    backups = base * prices.backup_percent / 100.0 if item.backups else 0.0
    return Priced(item.name, item.type, item.location, base, ip, backups)


def bill(prices: Prices, items: Iterable[Billable], volumes: Iterable[BillableVolume] = ()) -> Bill:
    priced: list[Priced] = []
    unknown: list[str] = []
    for item in items:
        p = price_server(prices, item)
        if p is None:
            unknown.append(f"{item.name}: no price for server type {item.type} in {item.location}")
        else:
            priced.append(p)
    priced_volumes: list[PricedVolume] = []
    for v in volumes:
        if prices.volume_gb_monthly is None:
            unknown.append(f"volume {v.name}: no price for volumes")
        else:
            priced_volumes.append(PricedVolume(v.name, v.size_gb, v.size_gb * prices.volume_gb_monthly))
    return Bill(tuple(priced), tuple(unknown), prices.currency, tuple(priced_volumes))


def money(amount: float, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def describe_change(wanted: Bill, current: Bill) -> str:
    """'12.34 EUR/month (now 8.10 EUR, +4.24 EUR)'."""
    delta = round(wanted.total - current.total, 2)
    sign = "+" if delta >= 0 else "-"
    return (f"{money(wanted.total, wanted.currency)}/month "
            f"(now {money(current.total, current.currency)}, {sign}{money(abs(delta), wanted.currency)})")
