"""`homelab lab`: throwaway local Debian 13/12 machines (systemd-nspawn) to test against.

Public API: `Lab` (up/add/down/status/reset/run/ssh_argv/inventory/stop_host/start_host/
rekey_host/move_behind_nat/move_to_bridge/address/attach_disk/detach_disk/attached_disks), `LabConfig` (settings from HOMELAB_LAB_*), `missing_requirements()`,
`deps_command()`, `parse_hosts_spec()` and `LAB_PACKAGES` (what the local apt repo mirrors).
"""
from __future__ import annotations

from homelab.lab.config import (
    DEFAULT_SUITE, LAB_PACKAGES, SUITES, LabConfig, LabError, deps_command, missing_requirements,
    packages_for, parse_hosts_spec,
)
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from homelab.lab.manager import HostStatus, Lab, LabStatus


def __getattr__(name: str) -> Any:
    """The manager loads on first use: `homelab plan/apply` register the `lab` command's
    arguments on every start and must not pay for importing the whole lab (~30 ms)."""
    if name in ("HostStatus", "Lab", "LabStatus"):
        from homelab.lab import manager

        return getattr(manager, name)
    raise AttributeError(name)

__all__ = [
    "DEFAULT_SUITE", "LAB_PACKAGES", "SUITES", "HostStatus", "Lab", "LabConfig", "LabError", "LabStatus",
    "deps_command", "missing_requirements", "packages_for", "parse_hosts_spec",
]
