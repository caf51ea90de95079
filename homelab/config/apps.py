"""`apps:` (layer 6): which recipes run on which machine, with which values and wiring.

    apps:
      recipe_dirs: [recipes]            # your own recipes, relative to the config file
      images: {mirror: "registry.lan:5000", insecure: true}
      list:
        - name: feeds-db
          recipe: postgres
          machine: pi-1
        - name: feeds
          recipe: miniflux
          machine: pi-1
          variables: {base_url: "https://feeds.example.org/"}
          requires: {db: feeds-db}       # the recipe's alias -> an app of the recipe it needs
        - name: hello
          recipe: whoami
          machines: [pi-1, pi-2]         # a copy on each, load-balanced by ingress (stateless only)

A list of named entries, like `compute.machines`, keeps the order a person wrote and lets
the same recipe run twice under two names. Parsing reads recipe files (through the catalog,
from the config's directory): the only I/O here, and every recipe problem is reported in its
own file next to the config's problems.

Ports. An app's HTTP is published on 127.0.0.1 of its machine (ingress proxies to it). The
host port is `port:` if given, else derived from the app's name: 20000 + crc32(name) % 10000,
moving up to the next free port on that machine only when two names hash alike (apps taken
in name order), so it does not change when apps are added, removed or reordered. A
service-kind app (and a host-network service) listens where its recipe's command says: its
port is the recipe's and cannot be moved here. Two apps on one machine claiming one port is
a config error.

Requirements are wired explicitly (`requires: {alias: app}`), to an app of the right recipe
on the same machine: apps reach each other over the provider's Docker network
(`homelab-<app>`, where the provider answers to its own app name), and a provider's secrets
are copied between the two apps' env files on that machine — they never leave it.

Several machines. `machines: [a, b]` runs a copy of the app on each, on one HTTP port, and
ingress balances over them. Only a stateless recipe may: one that keeps data (a `data` volume,
something to back up, a dump) is refused, since two copies of a database are two diverging
databases, not a cluster. What it requires must run on each of its machines.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from homelab.claims import BackupPath, Claim, HttpService, NeedsPackage, OpenPort
from homelab.config.interpolate import Scope, Value, fill
from homelab.config.reader import NAME, PATH, Problems, Section, describe_type, suggest
from homelab.config.recipe import DumpSpec, Recipe, type_problem
from homelab.config.recipe_catalog import Catalog, UnknownRecipe
from homelab.config.yamlpos import Located
from homelab.errors import ConfigError

DATA_ROOT = "/srv/homelab"  # <DATA_ROOT>/<app>/ holds an app's project, env file and data/
PORT_BASE, PORT_SPAN = 20000, 10000  # derived HTTP host ports: 20000-29999
SECRETS_FILE = "secrets.env"
# registry host[:port], optionally with a path prefix: "registry.lan:5000", "mirror.lan/hub"
MIRROR = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# docker.io is the daemon, docker-cli the client (split in trixie; only a Recommends of docker.io,
# and compute installs without Recommends), docker-compose the v2 plugin. Compose is Debian 13 only.
COMPOSE_PACKAGES = ("docker.io", "docker-cli", "docker-compose")
APP_KEYS = ["name", "recipe", "machine", "machines", "variables", "requires", "port", "anubis"]


@dataclass(frozen=True)
class ImageSettings:
    """`mirror` stands in for every upstream registry. The path is kept, by the rule of
    homelab/lab/images/refs.py `mirror_ref` (one rule for the lab and for real mirrors):
    docker.io/library/postgres:17 -> MIRROR/library/postgres:17 (Docker Hub loses its name),
    ghcr.io/kozea/radicale:3 -> MIRROR/ghcr.io/kozea/radicale:3 (others keep theirs)."""

    mirror: str | None = None
    insecure: bool = False  # the mirror speaks plain HTTP (daemon.json insecure-registries)


@dataclass(frozen=True)
class App:
    """One app on one machine (or copies of a stateless one on several), its recipe's
    variables all filled (config value or default)."""

    name: str
    recipe: str
    machine: str
    variables: tuple[tuple[str, Value], ...] = ()  # every recipe variable, in recipe order
    requires: tuple[tuple[str, str], ...] = ()  # (alias, app name)
    port: int | None = None  # host port of its HTTP (loopback); None: the recipe serves no HTTP
    anubis: bool = False  # ask ingress to put Anubis in front of it
    path: str = field(default="", metadata={"internal": True})  # "apps.list[2]"
    # where each machine is named: (key below the app's path, line, col), e.g. ("machines[1]", 3, 53)
    machines_at: tuple[tuple[str, int, int], ...] = field(default=(), compare=False, repr=False,
                                                          metadata={"internal": True})
    # `machines: [a, b]`: the machines after the first that run a copy (stateless recipes only)
    also_on: tuple[str, ...] = ()

    @property
    def machines(self) -> tuple[str, ...]:
        """Every machine that runs this app, the first one first."""
        return (self.machine, *self.also_on)

    @property
    def dir(self) -> str:
        return f"{DATA_ROOT}/{self.name}"

    @property
    def data_dir(self) -> str:
        """`${app.data}`: every volume without a source is `<data_dir>/<volume>`."""
        return f"{self.dir}/data"

    @property
    def env_file(self) -> str:
        return f"{self.dir}/{SECRETS_FILE}"

    def values(self) -> dict[str, Value]:
        return dict(self.variables)

    def provider(self, alias: str) -> str:
        return dict(self.requires)[alias]


@dataclass(frozen=True)
class AppsConfig:
    recipe_dirs: tuple[Path, ...] = ()
    images: ImageSettings = field(default_factory=ImageSettings)
    apps: tuple[App, ...] = ()
    recipes: Mapping[str, Recipe] = field(default_factory=dict, compare=False, repr=False, metadata={"internal": True})

    def app(self, name: str) -> App | None:
        return next((a for a in self.apps if a.name == name), None)

    def recipe_of(self, app: App) -> Recipe:
        return self.recipes[app.recipe]

    def cross_check(self, cfg: Any, root: Located, problems: Problems) -> None:
        """Every app's machines are machines or servers of the config."""
        known = list(getattr(cfg, "host_names", ()))
        for app in self.apps:
            for i, machine in enumerate(app.machines):
                if machine in known:
                    continue
                # an App made in code, not parsed, has no positions
                key, line, col = app.machines_at[i] if i < len(app.machines_at) else (f"machines[{i}]", 1, 1)
                close = suggest(machine, known)
                hint = close if close.startswith("did") else (
                    f"known: {', '.join(known)}" if known else "define it under compute first")
                problems.add(Located(None, line, col), f"{app.path}.{key}", f"no machine or server named {machine!r}",
                             hint)


# ------------------------------------------------------------------ values ----
def host_of(app: App, recipe: Recipe) -> str:
    """`${app.host}`: the name other apps reach it at — its own name on its Docker network
    (`homelab-<app>`), or loopback for a service-kind app (same machine, see requirements)."""
    return "127.0.0.1" if recipe.kind == "service" else app.name


def scope_for(app: App, recipe: Recipe, secret: Any, literal: Any = None,
              dep: Mapping[str, Mapping[str, str]] | None = None, data: str | None = None) -> Scope:
    """How `${...}` is filled for `app`; `data`: its data directory if not the default one."""
    kw = {"literal": literal} if literal is not None else {}
    values = {"name": app.name, "data": data or app.data_dir, "host": host_of(app, recipe)}
    return Scope(var=app.values(), app=values, secret=secret, dep=dep or {}, **kw)


def secret_variable(name: str) -> str:
    """The env file's name for an app's own secret (the same as homelab/layers/apps/release.py)."""
    return "HOMELAB_SECRET_" + name.upper()


def dep_variable(alias: str, name: str) -> str:
    """The env file's name for a provider's secret, copied into the dependent's env file."""
    return f"HOMELAB_DEP_{alias.upper()}_{name.upper()}"


def fixed_port(recipe: Recipe) -> int | None:
    """The HTTP port when it cannot be moved: a service-kind unit or a host-network container."""
    if recipe.http is None:
        return None
    svc = recipe.service(recipe.http.service)
    port = svc.port(recipe.http.port) if svc is not None else None
    if port is not None and svc is not None and (recipe.kind == "service" or svc.host_network):
        return port.port
    return None


def stateful_because(recipe: Recipe) -> str | None:
    """Why copies of this recipe on several machines would not be one app: it keeps data
    (a dump, a `data` volume homelab creates, volumes it backs up). None: stateless, the
    copies are interchangeable."""
    if recipe.backup.dump is not None:
        return f"recipe {recipe.name!r} keeps a database (it has a dump)"
    for svc in recipe.services:
        for vol in svc.volumes:
            if vol.kind == "data" and vol.source is None:
                return f"recipe {recipe.name!r} keeps data in volume {vol.name!r}"
    if recipe.backup.volumes:
        return f"recipe {recipe.name!r} backs up {', '.join(recipe.backup.volumes)}"
    return None


def derived_port(name: str) -> int:
    return PORT_BASE + zlib.crc32(name.encode()) % PORT_SPAN


# ------------------------------------------------------------------ parse ----
class _Parser:
    def __init__(self, sec: Section) -> None:
        self.sec = sec
        self.base = Path(sec.problems.file).resolve().parent if sec.problems.file else Path.cwd()
        self.catalog = Catalog()
        self.recipes: dict[str, Recipe] = {}
        self.broken: set[str] = set()  # recipes already reported

    def dirs(self) -> tuple[Path, ...]:
        out: list[Path] = []
        node = self.sec.raw("recipe_dirs")
        items = node.value if node is not None and isinstance(node.value, list) else []
        for i, d in enumerate(self.sec.str_list("recipe_dirs", pattern=PATH, hint="a directory path without spaces")):
            p = (self.base / Path(d).expanduser()).resolve()
            if not p.is_dir():
                at = items[i] if i < len(items) else node
                self.sec.fail(at, f"apps.recipe_dirs[{i}]", f"no directory {str(p)!r}",
                              "paths are relative to the config file's directory")
                continue
            out.append(p)
        self.catalog = Catalog(out)
        return tuple(out)

    def recipe(self, name: str, at: Located | None, path: str, key: bool) -> Recipe | None:
        if name in self.recipes:
            return self.recipes[name]
        if name in self.broken:
            return None
        try:
            recipe = self.catalog.load(name)
        except UnknownRecipe as exc:
            self.sec.fail(at, path, exc.message, exc.hint, key=key)
            return None
        except ConfigError as exc:  # the recipe's own problems, in its own file
            self.broken.add(name)
            self.sec.ok = False
            self.sec.problems.items.extend(exc.problems)
            return None
        self.recipes[name] = recipe
        return recipe

    def app(self, s: Section) -> tuple[App, Section] | None:
        name = s.text("name", required=True, pattern=NAME, hint="lowercase letters, digits and '-', like 'feeds'")
        given = s.text("recipe", pattern=NAME, hint="a recipe name like 'miniflux'")
        machines, machines_node, places = self.machines(s)
        port_node = s.raw("port")
        port = s.integer("port", lo=1024, hi=65535)
        anubis = s.flag("anubis", False)
        s.done(APP_KEYS)
        recipe = None
        if given is not None or name is not None:
            rname = given or name or ""
            at = s.raw("recipe") if given is not None else s.raw("name")
            recipe = self.recipe(rname, at, f"{s.sub('recipe')}", key=given is not None)
        variables = self.variables(s, recipe) if recipe is not None else ()
        if recipe is not None and recipe.http is None:
            for key, node in (("port", port_node), ("anubis", s.raw("anubis") if anubis else None)):
                if node is not None and node.value is not None:
                    s.fail(node, s.sub(key), f"recipe {recipe.name!r} serves no HTTP", f"drop {key}", key=True)
        fixed = fixed_port(recipe) if recipe is not None else None
        if fixed is not None and port is not None and port != fixed:
            s.fail(port_node, s.sub("port"), f"recipe {recipe.name!r} listens on {fixed} itself",  # type: ignore[union-attr]
                   "its command sets the port; drop port here")
        if recipe is not None and len(machines) > 1:
            why = stateful_because(recipe)
            if why is not None:
                s.fail(machines_node, s.sub("machines"), f"{why}: two copies of it are not a cluster",
                       "run it on one machine (machine: NAME); only stateless apps run on several")
        if not s.ok or name is None or not machines or recipe is None:
            return None
        app = App(name, recipe.name, machines[0], variables, (), port if fixed is None else fixed, anubis, s.path,
                  places, machines[1:])
        return app, s

    @staticmethod
    def machines(s: Section) -> tuple[tuple[str, ...], Located | None, tuple[tuple[str, int, int], ...]]:
        """`machine: NAME` or `machines: [NAME, ...]` (exactly one of them), its node, and where
        each name stands (so a later check points at the entry, `machines[1]`, not the list)."""
        hint = "a machine or server of compute"
        if s.has("machines"):
            if s.has("machine"):
                s.fail(s.raw("machine"), s.sub("machine"), "give machine or machines, not both",
                       "machines: [a, b] runs a copy on each", key=True)
                return (), None, ()
            names = s.str_list("machines", pattern=NAME, hint=hint)
            node = s.raw("machines")
            if s.ok and not names:
                s.fail(node, s.sub("machines"), "names no machine", "like machines: [pi-1, pi-2]")
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                s.fail(node, s.sub("machines"), f"names {', '.join(dupes)} twice", "one copy per machine")
            items = node.value if node is not None and isinstance(node.value, list) else []
            return names, node, tuple((f"machines[{i}]", it.line, it.col) for i, it in enumerate(items))
        machine = s.text("machine", required=True, pattern=NAME, hint=hint)
        s.raw("machines")
        node = s.raw("machine")
        at = (("machine", node.line, node.col),) if node is not None else ()
        return ((machine,) if machine is not None else ()), node, at

    def variables(self, s: Section, recipe: Recipe) -> tuple[tuple[str, Value], ...]:
        node, given = _mapping(s, "variables", "NAME: value", "like variables: {base_url: \"https://feeds.example.org/\"}")
        names = [v.name for v in recipe.variables]
        for key, item in given.items():
            if recipe.variable(key) is None:
                hint = suggest(key, names) if names else f"recipe {recipe.name!r} has no variables"
                s.fail(item, f"{s.sub('variables')}.{key}", f"recipe {recipe.name!r} has no variable {key!r}",
                       hint, key=True)
        out: list[tuple[str, Value]] = []
        for var in recipe.variables:
            value = given.get(var.name)
            if value is None or value.value is None:
                if var.required:
                    s.fail(node or s.node, f"{s.sub('variables')}.{var.name}", "is required",
                           f"recipe {recipe.name!r}: {var.description or 'a ' + var.type}", key=node is not None)
                elif var.default is not None:
                    out.append((var.name, var.default))
                continue
            why = type_problem(value.value, var.type)
            if why is not None:
                s.fail(value, f"{s.sub('variables')}.{var.name}", why, var.description)
                continue
            out.append((var.name, value.value))
        return tuple(out)


def _mapping(s: Section, key: str, what: str, hint: str) -> tuple[Located | None, dict[str, Located]]:
    node = s.raw(key)
    if node is None or node.value is None:
        return node, {}
    if not isinstance(node.value, dict):
        s.fail(node, s.sub(key), f"should be a mapping of {what}, not {describe_type(node.value)}", hint)
        return node, {}
    return node, node.value


def parse_apps(sec: Section) -> AppsConfig:
    p = _Parser(sec)
    dirs = p.dirs()
    images = _images(sec.section("images"))
    if "list" in sec.items and sec.items["list"].value is not None and not isinstance(sec.items["list"].value, list):
        sec.fail(sec.items["list"], "apps.list", f"should be a list of apps, not {describe_type(sec.items['list'].value)}",
                 "each app: - {name: feeds, recipe: miniflux, machine: pi-1}")
        parsed: list[tuple[App, Section]] = []
        sec.raw("list")
    else:
        parsed = _unique(sec, p)
    sec.done(["recipe_dirs", "images", "list"])
    apps = _wire(parsed, p.recipes)
    apps = _assign_ports(apps, parsed, p.recipes, sec)
    return AppsConfig(recipe_dirs=dirs, images=images, apps=tuple(apps), recipes=dict(p.recipes))


def _unique(sec: Section, p: _Parser) -> list[tuple[App, Section]]:
    seen: dict[str, str] = {}
    out: list[tuple[App, Section]] = []
    for item in sec.items_of("list"):
        got = p.app(item)
        node = item.items.get("name")
        name = node.value if node is not None and isinstance(node.value, str) else None
        if name is not None and name in seen:  # also when either entry had other problems
            item.fail(node, f"{item.path}.name", f"{name!r} is already used by {seen[name]}",
                      "every app needs its own name")
            continue
        if name is not None:
            seen[name] = item.path
        if got is None:
            sec.ok = False
            continue
        out.append(got)
    return out


def _images(s: Section | None) -> ImageSettings:
    if s is None:
        return ImageSettings()
    mirror = s.text("mirror", pattern=MIRROR, hint="a registry host[:port], like registry.lan:5000")
    insecure = s.flag("insecure", False)
    s.done(["mirror", "insecure"])
    if insecure and mirror is None and s.ok:
        s.fail(s.raw("insecure"), s.sub("insecure"), "insecure applies to a mirror", "set mirror too", key=True)
    return ImageSettings(mirror, insecure)


def _wire(parsed: list[tuple[App, Section]], recipes: Mapping[str, Recipe]) -> list[App]:
    """`requires: {alias: app}` against the recipe's requirements and the other apps."""
    by_name = {a.name: a for a, _ in parsed}
    out: list[App] = []
    for app, s in parsed:
        recipe = recipes[app.recipe]
        aliases = {r.alias: r for r in recipe.requires}
        node, given = _mapping(s, "requires", "alias: app", "like requires: {db: feeds-db}")
        for alias, item in given.items():
            if alias not in aliases:
                hint = suggest(alias, list(aliases)) if aliases else f"recipe {recipe.name!r} requires nothing"
                s.fail(item, f"{s.sub('requires')}.{alias}", f"recipe {recipe.name!r} has no requirement {alias!r}",
                       hint, key=True)
        wired: list[tuple[str, str]] = []
        for alias, req in aliases.items():
            path = f"{s.sub('requires')}.{alias}"
            candidates = [a.name for a in by_name.values() if a.recipe == req.recipe and a.name != app.name]
            wire = given.get(alias)
            if wire is None or wire.value is None:
                example = candidates[0] if candidates else f"my-{req.recipe}"
                hint = (f"add requires: {{{alias}: {example}}}" if candidates else
                        f"add an app with recipe: {req.recipe} on {app.machine}, then requires: {{{alias}: {example}}}")
                s.fail(node or s.node, path, f"needs an app of recipe {req.recipe!r}", hint, key=True)
                continue
            target = wire.value
            other = by_name.get(target) if isinstance(target, str) else None
            if other is None or other.name == app.name:
                what = "an app cannot require itself" if target == app.name else f"no app named {target!r}"
                s.fail(wire, path, f"{what} (to fill {alias!r}: an app of recipe {req.recipe!r})",
                       suggest(str(target), candidates) if candidates else f"add an app with recipe: {req.recipe}")
            elif other.recipe != req.recipe:
                s.fail(wire, path, f"app {target!r} runs recipe {other.recipe!r}, not {req.recipe!r}",
                       f"apps of recipe {req.recipe!r}: {', '.join(candidates)}" if candidates
                       else f"add an app with recipe: {req.recipe}")
            elif not set(app.machines) <= set(other.machines):
                missing = ", ".join(m for m in app.machines if m not in other.machines)
                s.fail(wire, path, f"app {target!r} runs on {', '.join(other.machines)}, not on {missing}",
                       "an app and what it requires share one machine (its Docker network and env files)")
            else:
                wired.append((alias, target))
        if s.ok:
            out.append(replace(app, requires=tuple(wired)))
    return out


def host_ports(app: App, recipe: Recipe) -> list[tuple[str, int, str]]:
    """(proto, port, what) an app occupies on its machine, besides a derived HTTP port."""
    out: list[tuple[str, int, str]] = []
    http_port = None
    if recipe.http is not None:
        svc = recipe.service(recipe.http.service)
        http_port = svc.port(recipe.http.port) if svc is not None else None
    for svc in recipe.services:
        for port in svc.ports:
            on_host = recipe.kind == "service" or svc.host_network
            if on_host or port.publish:
                out.append((port.protocol, port.port, f"{svc.name} {port.name}"))
            elif port is http_port and app.port is not None:
                out.append(("tcp", app.port, "http"))
    return out


def _assign_ports(apps: list[App], parsed: list[tuple[App, Section]], recipes: Mapping[str, Recipe],
                  sec: Section) -> list[App]:
    """Fixed and explicit ports first (two on one machine: an error), then derived ones."""
    nodes = {a.name: s for a, s in parsed}
    used: dict[tuple[str, str, int], str] = {}  # (machine, proto, port) -> "app (what)"
    for app in apps:
        for machine in app.machines:
            for proto, port, what in host_ports(app, recipes[app.recipe]):
                key = (machine, proto, port)
                if key in used:
                    s = nodes[app.name]
                    at = s.raw("port") if what == "http" and s.has("port") else s.raw("name")
                    sec.fail(at, f"{app.path}.port" if what == "http" else f"{app.path}.name",
                             f"{machine}: {proto} port {port} ({app.name} {what}) is already taken by {used[key]}",
                             "give one of them another port:" if what == "http" else
                             "run one of them on another machine (the recipe fixes this port)")
                    continue
                used[key] = f"{app.name} ({what})"
    out: dict[str, App] = {a.name: a for a in apps}
    for app in sorted(apps, key=lambda a: a.name):
        if app.port is not None or recipes[app.recipe].http is None:
            continue
        # one port on every machine of the app: ingress dials the same port on each copy
        port = derived_port(app.name)
        while any((m, "tcp", port) in used for m in app.machines):
            port = PORT_BASE + (port - PORT_BASE + 1) % PORT_SPAN
        for m in app.machines:
            used[(m, "tcp", port)] = f"{app.name} (http)"
        out[app.name] = replace(app, port=port)
    return [out[a.name] for a in apps]


# ------------------------------------------------------------------ claims ----
def resolved_dump(app: App, recipe: Recipe) -> DumpSpec | None:
    """The recipe's dump with the app's values filled in (argv: nothing to escape). A secret in a
    dump command stays a reference to the env file's variable, never a value."""
    dump = recipe.backup.dump
    if dump is None:
        return None
    scope = scope_for(app, recipe, secret=lambda n: "${" + secret_variable(n) + "}")
    service = next((s for s in recipe.services if s.name == dump.service), None)
    health = service.healthcheck if service is not None else None
    # a fresh instance takes the restore once the service's own health check passes, unless the
    # recipe knows better (e.g. postgres answers on its socket while its entrypoint still inits)
    ready = dump.ready or (health.command if health is not None else ())
    argv = {k: tuple(fill(a, scope) for a in v) for k, v in
            (("command", dump.command), ("restore", dump.restore), ("verify", dump.verify), ("ready", ready))}
    return DumpSpec(dump.service, argv["command"], argv["restore"], argv["verify"], dump.filename, argv["ready"])


def apps_claims(apps: AppsConfig, cfg: Any) -> Iterator[Claim]:
    """HTTP for ingress, paths and dumps for storage, packages, and the ports peers must reach."""
    packages: dict[tuple[str, str], str] = {}
    for app in apps.apps:
        recipe = apps.recipe_of(app)
        if recipe.http is not None and app.port is not None:
            yield HttpService("apps", app.path, app.name, app.machines, app.port, recipe.http.health_path,
                              app.anubis)
        paths = tuple(f"{app.data_dir}/{v}" for v in recipe.backup.volumes)
        dump = resolved_dump(app, recipe)
        # (an app on several machines is stateless, the parser refuses the others: nothing here)
        if paths or dump is not None:
            # without a dump, a consistent copy of files needs the services that write them stopped
            stop = () if dump is not None else tuple(
                s.name for s in recipe.services if any(v.name in recipe.backup.volumes for v in s.volumes))
            yield BackupPath("apps", app.path, app.machine, app.name, paths, dump, stop,
                             home=app.dir if recipe.kind == "compose" else "")
        wanted = COMPOSE_PACKAGES if recipe.kind == "compose" else (recipe.package or "",)
        for machine in app.machines:
            for package in wanted:
                packages.setdefault((machine, package), app.path)
            for svc in recipe.services:
                for port in svc.ports:
                    if port.publish:
                        yield OpenPort("apps", app.path, machine, port.protocol, port.port,
                                       why=f"{app.name} {port.name}", forwarded=recipe.kind == "compose")
    for (host, package), path in packages.items():
        yield NeedsPackage("apps", path, host, package)
