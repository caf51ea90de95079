"""One apt transaction per host: the base packages plus every layer's `NeedsPackage` claims.

Compute runs before the layers that configure machines (mesh, permissions, storage, ingress,
apps), so it installs all their packages at once: one `apt-get update` and one install per
host instead of one per layer (each apt run re-reads the package lists: ~1 CPU-s on a small
VPS). The layers above only assume their packages; the engine probes a host again after
compute changed it, so they see what was installed.

Gathering is pure (config claims in, package lists out). A claim with `only_if` is wanted
only where its shell test succeeds on the host; the test runs in compute's probe, in the same
remote command as everything else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from homelab.claims import Claims, NeedsPackage
from homelab.probe import Probe, ProbeResult, parse_packages
from homelab.probe import packages as probe_packages

PACKAGES_KEY = "compute.packages"
CHECKS_KEY = "compute.package_checks"


@dataclass(frozen=True)
class HostPackages:
    """What one host needs: (package, owner) always, and (package, owner, only_if) where a test says so."""

    always: tuple[tuple[str, str], ...] = ()
    conditional: tuple[tuple[str, str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every package that may be wanted, unique, in claim order (what the probe asks dpkg about)."""
        return tuple(dict.fromkeys([p for p, _ in self.always] + [p for p, _, _ in self.conditional]))

    @property
    def conditions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for _, _, c in self.conditional))


def host_packages(base: Sequence[str], claims: Claims, host: str) -> HostPackages:
    """Pure: the base packages (owner compute) and the host's package claims, each package once."""
    always: dict[str, str] = {p: "compute" for p in base}
    conditional: dict[str, tuple[str, str]] = {}
    for claim in claims.of(NeedsPackage, host):
        if claim.only_if:
            conditional.setdefault(claim.package, (claim.owner, claim.only_if))
        else:
            always.setdefault(claim.package, claim.owner)
    return HostPackages(tuple(always.items()),
                        tuple((p, o, c) for p, (o, c) in conditional.items() if p not in always))


def package_probes(wanted: HostPackages) -> dict[str, str | Probe]:
    out: dict[str, str | Probe] = {PACKAGES_KEY: probe_packages(wanted.names)}
    if wanted.conditions:
        out[CHECKS_KEY] = "; ".join(f"if ( {c} ) >/dev/null 2>&1; then echo {i}; fi"
                                    for i, c in enumerate(wanted.conditions)) + "; true"
    return out


def parse_checks(result: ProbeResult | None, wanted: HostPackages) -> set[str] | None:
    """The conditions that held on the host; None when not probed (not created yet, or failed)."""
    if result is None or not result.ok:
        return None
    held = {int(line) for line in result.lines() if line.strip().isdigit()}
    return {c for i, c in enumerate(wanted.conditions) if i in held}


def installed(probed: Mapping[str, ProbeResult] | None) -> set[str]:
    result = (probed or {}).get(PACKAGES_KEY)
    if result is None:
        return set()
    return {name for name, version in parse_packages(result).items() if version is not None}


def wanted_now(wanted: HostPackages, probed: Mapping[str, ProbeResult] | None) -> list[tuple[str, str]]:
    """(package, owner) this host needs. A conditional package counts where its test held, and
    also where the host could not be asked (a server this apply creates): an extra wireguard-go
    is harmless, a missing one is not."""
    held = parse_checks((probed or {}).get(CHECKS_KEY), wanted) if probed else None
    extra = [(p, o) for p, o, c in wanted.conditional if held is None or c in held]
    return [*wanted.always, *extra]


def missing_packages(wanted: HostPackages, probed: Mapping[str, ProbeResult] | None) -> list[tuple[str, str]]:
    have = installed(probed)
    return [(p, o) for p, o in wanted_now(wanted, probed) if p not in have]


def by_owner(pairs: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """'mesh: wireguard-tools, iputils-ping' lines, owners in first-seen order (plan detail)."""
    owners: dict[str, list[str]] = {}
    for package, owner in pairs:
        owners.setdefault(owner, []).append(package)
    return tuple(f"{owner}: {', '.join(pkgs)}" for owner, pkgs in owners.items())

