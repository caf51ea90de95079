"""`homelab backup CONFIG run|list|restore|drill [APP]`: backups and restores on demand.

These are not a walk of the layers (no plan, nothing to review): one command per app on its
host (start a unit, run a restore script). So they take a session from `Engine.open_host`
(logged in as a run would, host key pinned by an earlier apply) and run there; the engine
gains nothing for it. What runs on the hosts is what `apply` installed there: the backup/drill
units, and `restic-<app>-<repo>` (restic with that repository's 0600 password and credential
files): no secret crosses the connection or appears in a command line.

Restore in place (`restore APP` without `--to`): stop the app's services (the claim's `stop`:
systemd units, or compose services of the app's project), move its data aside, restore,
start, health-gate, and put the pre-restore copy back if any step fails.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass
from typing import Any, Iterator

from homelab.errors import HomelabError, UsageError

HELP = "backups now: `backup CONFIG run|list|restore|drill [APP]` (restore in place, or --to DIR)"
ACTIONS = ("run", "list", "restore", "drill")
NO_REPOSITORY = 10  # restic 0.17+: "repository does not exist" (doc/075_scripting.rst)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="path to config.yaml")
    parser.add_argument("action", choices=ACTIONS, help="run a backup, list snapshots, restore, or drill now")
    parser.add_argument("app", nargs="?", help="only this app (default: every app; restore needs one)")
    parser.add_argument("--repository", metavar="NAME", help="only this repository")
    parser.add_argument("--snapshot", default="latest", metavar="ID", help="restore this snapshot (default latest)")
    parser.add_argument("--to", metavar="DIR", help="restore into DIR on the app's host instead of in place")


@dataclass(frozen=True)
class Job:
    """One app's backups in one repository, as the CLI acts on them."""

    claim: Any  # BackupPath
    target: Any  # repo.Target


def jobs(config: Any, app: str | None, repository: str | None) -> list[Job]:
    """The (app, repository) pairs the config and claims name, filtered (pure)."""
    from homelab.claims import BackupPath
    from homelab.layers.storage.plan import repositories_for
    from homelab.layers.storage.repo import Target

    storage = config.get("storage")
    if storage is None:
        raise UsageError(f"{config.path}: has no storage section", "add `storage:` and apply first")
    claims = [c for c in config.claims.of(BackupPath) if app is None or c.app == app]
    if app is not None and not claims:
        known = sorted({c.app for c in config.claims.of(BackupPath)})
        raise UsageError(f"no app {app!r} is backed up", f"apps: {', '.join(known) or 'none'}")
    out = [Job(c, Target(c.app, c.host, r)) for c in claims for r in repositories_for(storage, c)
           if repository is None or r.name == repository]
    if not out:
        raise UsageError("nothing to do: no app is backed up to that repository")
    return out


def service_commands(app: str, stop: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(stop, start, health) shell commands for the names in a claim's `stop` (pure): a name
    ending in .service is a systemd unit; anything else a compose service of project `app`."""
    q = shlex.quote
    stops, starts, health = [], [], []
    for name in stop:
        if name.endswith(".service"):
            stops.append(f"systemctl stop {q(name)}")
            starts.append(f"systemctl start {q(name)}")
            health.append(f"systemctl is-active -q {q(name)}")
        else:
            stops.append(f"docker compose -p {q(app)} stop {q(name)}")
            starts.append(f"docker compose -p {q(app)} start {q(name)}")
            health.append(f"docker compose -p {q(app)} ps --status running -q {q(name)} | grep -q .")
    return tuple(stops), tuple(starts), tuple(health)


def remote_command(action: str, job: Job, snapshot: str = "latest", to: str | None = None) -> tuple[str, str]:
    """(command, stdin script) that does `action` for `job` on its host (pure)."""
    from homelab.layers.storage.plan import app_backup, restic_wrapper
    from homelab.layers.storage.scripts import render_restore

    t = job.target
    q = shlex.quote
    if action in ("run", "drill"):
        kind = "backup" if action == "run" else "drill"
        return (f"systemctl start {q(t.unit(kind))}.service; rc=$?; cat {q(t.status_file(kind))}; exit $rc", "")
    wrapper = q(restic_wrapper(t))
    if action == "list":
        return (f"timeout 120 {wrapper} snapshots --json --host {q(t.host)} --tag homelab", "")
    assert action == "restore"
    if to is not None:
        return (f"mkdir -p {q(to)} && timeout 3600 {wrapper} restore {q(snapshot)} --host {q(t.host)} "
                f"--tag homelab --target {q(to)} --verify", "")
    stop, start, health = service_commands(t.app, tuple(job.claim.stop))
    return "", render_restore(t, app_backup(job.claim), restic_wrapper(t), stop=stop, start=start, health=health, snapshot=snapshot)


def sessions(config: Any, hosts: set[str]) -> Iterator[tuple[str, Any]]:
    """A session to each host, logged in as a run would (`Engine.open_host`: recorded login,
    pinned host key, no new key accepted)."""
    from homelab.engine import Engine

    engine = Engine(config)
    for name in sorted(hosts):
        conn = engine.open_host(name)
        try:
            yield name, conn
        finally:
            conn.close()


def summarize(action: str, job: Job, rc: int, out: str) -> tuple[bool, list[str]]:
    """What to print for one job's result (pure)."""
    label = f"{job.target.app} -> {job.target.repo.name} ({job.target.host})"
    if action in ("run", "drill"):
        try:
            st = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except ValueError:
            st = {}
        result = st.get("result", "failed" if rc else "ok")
        extra = f", snapshots {', '.join(s[:8] for s in st.get('snapshots', []))}" if st.get("snapshots") else ""
        if action == "drill" and st.get("files") is not None:
            extra = f", {st['files']} files verified" + (f" (stopped at {st['step']})" if result != "ok" else "")
            if st.get("check") and result == "ok":
                extra += f", scratch database: {st['check']}"
        why = f": {st['message']}" if st.get("message") and result != "ok" else ""
        return rc == 0 and result == "ok", [f"{'ok' if result == 'ok' else result.upper():<8} {label}{extra}{why}"]
    if action == "list":
        if rc == NO_REPOSITORY:
            return True, [f"{label}: 0 snapshots (no repository yet: the first backup makes it)"]
        try:
            snaps = json.loads(out) if out.strip() else []
        except ValueError:
            return False, [f"FAILED   {label}: {out.strip()[-200:]}"]
        lines = [f"{label}: {len(snaps)} snapshots"]
        for s in snaps:
            lines.append(f"  {s.get('short_id', s.get('id', '')[:8])}  {s.get('time', '')[:19]}  "
                         f"{','.join(s.get('tags') or [])}  {' '.join(s.get('paths') or [])}")
        return rc == 0, lines
    return rc == 0, [f"{'ok' if rc == 0 else 'FAILED':<8} restore {label}"] + [f"  {ln}" for ln in out.splitlines()[-20:]]


def perform(config: Any, action: str, app: str | None, repository: str | None = None, snapshot: str = "latest",
            to: str | None = None) -> tuple[bool, list[str], list[str]]:
    """Run one backup action on the hosts: (ok, result lines, diagnostic lines). The CLI prints
    them; the TUI's storage drill-down (keys for backup now and drill) shows them."""
    todo = jobs(config, app, repository)
    if action == "restore":
        todo = todo[:1]  # from one repository (the first listed, or --repository)
    ok, out, err = True, [], []
    for host, conn in sessions(config, {j.target.host for j in todo}):
        for job in (j for j in todo if j.target.host == host):
            command, stdin = remote_command(action, job, snapshot, to)
            try:
                # as root either way: run_script feeds the text to `sh -s` (sudo -n for other users)
                res = conn.run_script(stdin or command + "\n", timeout=7200)
            except HomelabError as exc:
                ok = False
                err.append(f"FAILED   {job.target.app} -> {job.target.repo.name}: {exc.message}")
                continue
            good, lines = summarize(action, job, res.rc, res.stdout + (res.stderr if action == "restore" else ""))
            ok = ok and good
            out.extend(lines)
            if not good and res.stderr.strip() and action != "restore":
                err.append(f"  {res.stderr.strip().splitlines()[-1]}")
    return ok, out, err


def run(args: argparse.Namespace) -> int:
    from homelab.config import load_config

    config = load_config(args.config)
    if args.action == "restore" and not args.app:
        raise UsageError("restore needs the app", "homelab backup CONFIG restore APP [--snapshot ID] [--to DIR]")
    if args.to is not None and not args.to.startswith("/"):
        raise UsageError(f"--to {args.to}: an absolute path on the app's host")
    ok, out, err = perform(config, args.action, args.app, args.repository, args.snapshot, args.to)
    for line in out:
        print(line)
    for line in err:
        print(line, file=sys.stderr)
    return 0 if ok else 1


COMMAND = (HELP, add_arguments, run)
