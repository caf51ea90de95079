"""`destroy`: what the config would look like with everything homelab created removed.

Destroy is not a separate code path: it is an apply of a derived config in which the cloud
servers are gone, so the same diff plans the deletes, with the same safety rules (deletes are
destructive: --confirm-delete; delete-protected servers block the plan until the config drops
protection). Adopted machines are never wiped: homelab did not create them.
"""
from __future__ import annotations

import dataclasses

from homelab.config.schema import Config


def teardown_config(cfg: Config) -> Config:
    compute = cfg.compute
    hetzner = compute.hetzner
    if hetzner is not None:
        hetzner = dataclasses.replace(hetzner, servers=())
    compute = dataclasses.replace(compute, machines=(), hetzner=hetzner)
    return dataclasses.replace(cfg, sections={**cfg.sections, "compute": compute})


def has_anything_to_destroy(cfg: Config) -> bool:
    hetzner = cfg.compute.hetzner
    return hetzner is not None
