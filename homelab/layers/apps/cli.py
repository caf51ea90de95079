"""`homelab apps ...`: rollback, moving an image pin on purpose, and offline bundles.

- `apps rollback CONFIG APP`: run the release that went live before the current one (its
  compose file and image pins are kept on the host), health-gated like every deploy;
- `apps update CONFIG APP`: pull the app's image tags again, show old -> new for each pin, and
  record the new pins (the next apply deploys them — review it with `homelab plan`);
- `apps bundle CONFIG -o FILE`: save every pinned image into one file, from a host that has
  them; `homelab apply CONFIG --bundle FILE` ships it to hosts that cannot pull.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from homelab.errors import HomelabError, UsageError

HELP = "apps tools: `apps rollback|restart|update CONFIG APP`, `apps bundle CONFIG -o FILE`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="apps_command", metavar="ACTION", required=True)
    for name, text in (("rollback", "run APP's previous release again (health-gated)"),
                       ("restart", "restart APP's containers (or its unit) as they are"),
                       ("update", "pull APP's image tags again and move its pins (old -> new); apply deploys them")):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", help="path to config.yaml")
        p.add_argument("app", help="an app of the config")
    p = sub.add_parser("bundle", help="save every pinned image into FILE (for `apply --bundle FILE`)")
    p.add_argument("config", help="path to config.yaml")
    p.add_argument("-o", "--output", required=True, metavar="FILE")


def _app(config: Any, name: str) -> Any:
    apps = config.get("apps")
    app = apps.app(name) if apps is not None else None
    if app is None:
        known = ", ".join(a.name for a in apps.apps) if apps is not None else "none"
        raise UsageError(f"{name} is not an app of {config.path}", f"apps: {known}")
    return app


def run(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.layers.base import RunOptions

    config = load_config(args.config)
    engine = Engine(config, RunOptions(), args.log_path)
    if args.apps_command in ("rollback", "restart"):
        act = rollback_app if args.apps_command == "rollback" else restart_app
        ok, message = act(engine, _app(config, args.app))
        print(message, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if args.apps_command == "update":
        return _update(engine, config, _app(config, args.app))
    return _bundle(engine, config, Path(args.output))


def _on_each(engine: Any, app: Any, script: str, timeout: float) -> list[tuple[str, Any]]:
    """Run one script on every machine of the app (copies of a stateless app are alike)."""
    out = []
    for machine in app.machines:
        session = engine.open_host(machine)
        try:
            out.append((machine, session.run_script(script, timeout=timeout)))
        finally:
            session.close()
    return out


def _where(app: Any, machine: str) -> str:
    return f"{app.name}@{machine}" if app.also_on else app.name


def rollback_app(engine: Any, app: Any) -> tuple[bool, str]:
    """Back to the release that went live before the current one (also the TUI's `b`)."""
    from homelab.layers.apps import release as rel

    lines, ok = [], True
    for machine, r in _on_each(engine, app, rel.render_rollback_script(rel.App(app.name, ())), 600):
        outcome = rel.parse_outcome(r.rc, r.stdout, r.stderr)
        if outcome.status == "rolled-back":
            lines.append(f"{_where(app, machine)}: rolled back from release {outcome.release} to {outcome.running}, "
                         "healthy (the next apply deploys what the config says again)")
        else:
            ok = False
            lines.append(f"{_where(app, machine)}: {outcome.status}: {outcome.detail}")
    return ok, "\n".join(lines)


def restart_app(engine: Any, app: Any) -> tuple[bool, str]:
    """Restart what runs, as it is (also the TUI's `s`): compose services, or the unit."""
    from homelab.layers.apps.render import unit_name

    recipe = engine.config.get("apps").recipe_of(app)
    if recipe.kind == "service":
        script = f"systemctl restart {shlex.quote(unit_name(app))}\n"
    else:
        p, a = shlex.quote(app.name), shlex.quote(app.dir)
        script = (f"cd {a} && docker compose -p {p} -f current/compose.yaml --env-file secrets.env restart\n")
    lines, ok = [], True
    for machine, r in _on_each(engine, app, script, 300):
        if r.rc == 0:
            lines.append(f"{app.name}: restarted on {machine}")
        else:
            ok = False
            lines.append(f"{_where(app, machine)}: restart failed: {r.stderr.strip()[-300:]}")
    return ok, "\n".join(lines)


def _update(engine: Any, config: Any, app: Any) -> int:
    from homelab.layers.apps.layer import pins_of
    from homelab.layers.apps.pins import parse_pull_probe, render_pull_probe
    from homelab.layers.apps.plan import refs_of
    from homelab.state import RunLock, State

    apps = config.get("apps")
    refs = refs_of(apps.recipe_of(app))
    session = engine.open_host(app.machine)
    try:
        r = session.run_script(render_pull_probe(refs, apps.images.mirror), timeout=1800)
    finally:
        session.close()
    seen, failed = parse_pull_probe(r.stdout)
    if failed:
        raise HomelabError(f"{app.machine} could not pull {', '.join(failed)}: {r.stderr.strip()[-300:]}",
                           "check the registry (or images.mirror) is reachable from that host")
    with RunLock(config.state_path) as lock:
        lock.acquire("apps update")
        state = State.load(config.state_path)
        old = pins_of(state.section("apps"))
        images = state.section("apps").setdefault("images", {})
        for ref in refs:
            new = seen[ref]
            before = old.get(ref)
            was = before.describe() if before else "(not pinned)"
            print(f"{ref}: {was} -> {new.describe()}" if not before or before.image_id != new.image_id
                  else f"{ref}: unchanged ({new.describe()})")
            images[ref] = {"image_id": new.image_id, "digest": new.digest}
        state.save()
    print(f"pins moved; `homelab plan {config.path}` shows the update, `homelab apply` deploys it", file=sys.stderr)
    return 0


def _bundle(engine: Any, config: Any, out: Path) -> int:
    from homelab.layers.apps.bundle import create_bundle
    from homelab.layers.apps.layer import pins_of
    from homelab.layers.apps.plan import refs_of
    from homelab.state import State

    apps = config.get("apps")
    if apps is None or not apps.apps:
        raise UsageError(f"{config.path} has no apps", "add apps: and apply once, to pin their images")
    pins = pins_of(State.load(config.state_path).section("apps"))
    refs = sorted({r for a in apps.apps for r in refs_of(apps.recipe_of(a))})
    unpinned = [r for r in refs if r not in pins]
    if unpinned:
        raise UsageError(f"not pinned yet: {', '.join(unpinned)}", "apply once where the images can be pulled")
    source = engine.open_host(apps.apps[0].machine)
    try:
        ids = create_bundle([pins[r] for r in refs], out, source)
    finally:
        source.close()
    print(f"{out}: {len(ids)} image(s) for {len(apps.apps)} app(s); ship with `homelab apply {config.path} "
          f"--bundle {out}`")
    return 0


COMMAND = (HELP, add_arguments, run)
