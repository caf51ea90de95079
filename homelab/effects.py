"""What an applied pass makes true: the layer's state writes, then its typed outputs.

A plan carries these (`LayerPlan.writes/outputs`, `Change.writes/outputs`), so no layer
object has to remember its last diff until after the apply.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from homelab.hosts import HostTarget
from homelab.model import Change, LayerPlan
from homelab.outputs import LoginAs

log = logging.getLogger("homelab")


def take_effects(ctx: Any, layer: str, plan: LayerPlan, applied: list[Change],
                 configured: dict[str, HostTarget] | None = None) -> None:
    """Plan writes first, then those of the changes that were applied, then outputs."""
    section = ctx.state.section(layer)
    for write in plan.writes:
        write.apply_to(section)
    for change in applied:
        for write in change.writes:
            write.apply_to(section)
    for output in [*plan.outputs, *(o for c in applied for o in c.outputs)]:
        if isinstance(output, LoginAs):
            record_login(ctx, output, configured if configured is not None else {})
        else:
            ctx.outputs.publish(output)


def record_login(ctx: Any, login: LoginAs, configured: dict[str, HostTarget]) -> None:
    """From now on homelab logs in as `login` (this run and, through state, the next ones)."""
    ctx.outputs.publish(login)
    ctx.state.update_host(login.host, login_user=login.user, login_port=login.port)
    target = ctx.hosts.get(login.host)
    if target is None:
        return
    configured.setdefault(login.host, target)
    ctx.hosts[login.host] = dataclasses.replace(target, user=login.user, port=login.port,
                                                key_path=login.key_path or target.key_path)
    if (target.user, target.port) != (login.user, login.port):
        log.info("%s: homelab logs in as %s (port %d) from now on", login.host, login.user, login.port)
