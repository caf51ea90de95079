"""The storage monitors of a run, from the probes' HostViews (pure; the rules are in monitors.py)."""
from __future__ import annotations

from typing import Mapping

from homelab.layers.storage import monitors as m
from homelab.layers.storage.plan import StorageInputs, repositories_for
from homelab.layers.storage.repo import Target
from homelab.layers.storage.scripts import SERVER_STATUS_DIR
from homelab.model import Health, Monitor


def storage_monitors(inputs: StorageInputs, now: float, failed: Mapping[str, str]) -> list[Monitor]:
    cfg = inputs.config
    sched = cfg.schedule
    out: list[Monitor] = []
    for claim in sorted(inputs.backups, key=lambda c: (c.host, c.app)):
        view = inputs.views.get(claim.host)
        for repo in repositories_for(cfg, claim):
            t = Target(claim.app, claim.host, repo)
            if view is None:
                why = failed.get(claim.host, "not reachable")
                out.append(Monitor(m.LAYER, f"{claim.app}->{repo.name}", "backup", Health.UNKNOWN,
                                   f"{claim.host}: {why}"))
                continue
            st = view.statuses.get
            out.append(m.backup_monitor(claim.app, repo.name, st(t.status_file("backup")), sched.backup_every, now))
            out.append(m.drill_monitor(claim.app, repo.name, st(t.status_file("drill")), sched.drill_every, now))
            out.append(m.check_monitor(claim.app, repo.name, st(t.status_file("check")), sched.check_every, now))
            if repo.type == "rest":
                out.append(m.append_only_monitor(claim.host, repo.name, view.append_only.get(t.key, "")))
    spaces: dict[str, set[str]] = {}
    for claim in inputs.backups:
        spaces.setdefault(claim.host, set()).add(cfg.data_root)
    for repo in cfg.repositories:
        if repo.type == "rest" and repo.machine and repo.path:
            spaces.setdefault(repo.machine, set()).add(repo.path)
            view = inputs.views.get(repo.machine)
            if view is not None:
                text = view.statuses.get(f"{SERVER_STATUS_DIR}/prune-{repo.name}.json")
                if text is not None:  # retention runs weekly: a first one may not have happened yet
                    out.append(m._aged(f"{repo.machine}:{repo.name}", "prune", m.parse_status(text),
                                       7 * 86400, now, "retention (forget --prune)"))
    for host in sorted(spaces):
        view = inputs.views.get(host)
        if view is None:
            continue
        for path in sorted(spaces[host]):
            out.append(m.space_monitor(host, path, view.space.get(path)))
    return out
