"""What an app becomes on its host, as text (pure): a compose.yaml, a secrets script, a systemd unit.

Secrets never appear in anything rendered here. An app's generated secrets live in its env file
on the host (`/srv/homelab/<app>/secrets.env`, 0600, made by `render_secrets_script`), and the
compose file refers to them as `${HOMELAB_SECRET_X:?...}`: docker compose interpolates the
file's values at `up` time (`docker compose --env-file <env file>`), so a secret inside a larger
value works (`DATABASE_URL: postgres://u:${HOMELAB_DEP_DB_PASSWORD:?...}@feeds-db:5432/app`)
and the value exists only on that host. `:?` makes compose refuse to start when the file is not
given, instead of running a database with an empty password. (Compose's per-service `env_file:`
is not interpolated and would hand every secret to every container: not used.)

Healthchecks: a recipe's `command` form becomes the compose healthcheck (it runs inside the
container, so `up --wait` and `depends_on: service_healthy` gate on it). The `http` and `tcp`
forms are probed by homelab from the host through the published port — most images carry no
curl — so they are listed under `x-homelab.probes`, not given to compose; a service depending on
such a service waits for it to start only.

Ports: the app's HTTP on `http_on` (loopback by default, the machine's mesh address when ingress
runs elsewhere) at the app's host port; ports a recipe marks `publish` on each of `publish_on`
(the addresses peers reach, given by the layer). 0.0.0.0 / :: are refused: Docker's DNAT would
bypass the firewall for every address of the machine.
"""
from __future__ import annotations

import ipaddress
import shlex
from typing import Mapping

import yaml

from homelab.config.apps import App, dep_variable, scope_for, secret_variable
from homelab.config.interpolate import Scope, fill, secret_names
from homelab.config.recipe import Recipe, ServiceSpec, Volume
from homelab.errors import HomelabError
from homelab.host_secrets import KINDS, SAFE_PATH

LOGGING = {"driver": "local", "options": {"max-file": "3", "max-size": "10m"}}  # as daemon.json's default
Deps = Mapping[str, tuple[App, Recipe]]  # alias -> the app filling it, and its recipe


def _bind(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise HomelabError(f"publish address {address!r} is not an IP address") from None
    if ip.is_unspecified:
        raise HomelabError(f"refusing to publish on {address}", "publish on 127.0.0.1 or the mesh address")
    return f"[{ip}]" if ip.version == 6 else str(ip)


def _compose_literal(text: str) -> str:
    return text.replace("$", "$$")


def _compose_secret(env_file: str, variable: str) -> str:
    return "${" + variable + ":?run docker compose with --env-file " + env_file + "}"


def dep_values(deps: Deps, env_file: str) -> dict[str, dict[str, str]]:
    """Each requirement's `provides`, filled in the provider's scope for compose; its secrets
    become the dependent's copies (`HOMELAB_DEP_<ALIAS>_<NAME>`) in the dependent's env file."""
    out: dict[str, dict[str, str]] = {}
    for alias, (other, recipe) in deps.items():
        scope = scope_for(other, recipe, lambda n, a=alias: _compose_secret(env_file, dep_variable(a, n)),
                          _compose_literal)
        out[alias] = {k: fill(v, scope) for k, v in recipe.provides}
    return out


def _check_deps(app: App, recipe: Recipe, deps: Deps) -> None:
    wanted = {r.alias: r.recipe for r in recipe.requires}
    given = {alias: r.name for alias, (_, r) in deps.items()}
    if given != wanted:
        raise HomelabError(f"{app.name}: requirements {wanted} but given {given}")


def render_compose(app: App, recipe: Recipe, images: Mapping[str, str], data_dir: str, env_file: str, *,
                   deps: Deps | None = None, http_on: str | tuple[str, ...] = "127.0.0.1",
                   publish_on: tuple[str, ...] = ("127.0.0.1",), pull_policy: str | None = None) -> str:
    """The app's compose project: services in recipe order, images as given (pinned), volumes
    bind-mounted from `data_dir`, no secret value. Deterministic text. `pull_policy="never"`
    when images are given by id (a loaded image has no registry digest, only its id)."""
    if recipe.kind != "compose":
        raise HomelabError(f"{app.name}: recipe {recipe.name} is a service, not compose")
    deps = deps or {}
    _check_deps(app, recipe, deps)
    scope = scope_for(app, recipe, lambda n: _compose_secret(env_file, secret_variable(n)), _compose_literal,
                      dep_values(deps, env_file), data=data_dir)
    binds_http = [_bind(a) for a in ((http_on,) if isinstance(http_on, str) else http_on)]
    binds_publish = [_bind(a) for a in publish_on]
    healthy = {s.name for s in recipe.services if s.healthcheck is not None and s.healthcheck.form == "command"}
    host_service = recipe.http.service if recipe.http is not None else recipe.services[0].name
    services: dict[str, object] = {}
    probes: dict[str, object] = {}
    for svc in recipe.services:
        key = svc.image or ""
        if key not in images:
            raise HomelabError(f"{app.name}: no pinned image for {key!r}", "pin every image of the recipe first")
        spec: dict[str, object] = {"image": images[key]}
        if pull_policy:
            spec["pull_policy"] = pull_policy
        if svc.entrypoint:
            spec["entrypoint"] = [fill(a, scope) for a in svc.entrypoint]
        if svc.command:
            spec["command"] = [fill(a, scope) for a in svc.command]
        if svc.user:
            spec["user"] = svc.user
        if svc.environment:
            spec["environment"] = {k: fill(v, scope) for k, v in sorted(svc.environment)}
        if svc.volumes:
            spec["volumes"] = [_mount(v, data_dir, scope) for v in svc.volumes]
        ports = _ports(app, recipe, svc, binds_http, binds_publish)
        if svc.host_network:
            spec["network_mode"] = "host"
        elif ports:
            spec["ports"] = ports
        h = svc.healthcheck
        if h is not None and h.form == "command":
            spec["healthcheck"] = {"test": ["CMD", *(fill(a, scope) for a in h.command)],
                                   "interval": f"{h.interval}s", "timeout": f"{h.timeout}s",
                                   "retries": h.retries, "start_period": f"{h.start_period}s"}
        elif h is not None:
            port = svc.port(h.port or "")
            probes[svc.name] = {"form": h.form, "container_port": port.port if port else None,
                                **({"path": h.http_path, "expect": h.http_expect} if h.form == "http" else {})}
        if svc.depends_on:
            spec["depends_on"] = {d: {"condition": "service_healthy" if d in healthy else "service_started"}
                                  for d in svc.depends_on}
        if not svc.host_network:
            nets: dict[str, object] = {"default": {"aliases": [app.name]} if svc.name == host_service else {}}
            nets.update({alias: {} for alias in sorted(deps)})
            spec["networks"] = nets
        if svc.read_only:
            spec["read_only"] = True
            spec["tmpfs"] = ["/tmp"]  # read-only images still need a scratch /tmp
        spec["restart"] = "unless-stopped"
        spec["logging"] = LOGGING
        services[svc.name] = spec
    networks: dict[str, object] = {"default": {"name": f"homelab-{app.name}"}}
    for alias, (other, _) in sorted(deps.items()):
        networks[alias] = {"name": f"homelab-{other.name}", "external": True}
    secrets = bool(recipe.secrets) or any(secret_names(v) for _, (_, r) in deps.items() for _, v in r.provides)
    meta: dict[str, object] = {"recipe": f"{recipe.name} {recipe.upstream_version}"}
    if secrets:
        meta["env_file"] = env_file
    meta["volumes"] = {v.name: v.kind for s in recipe.services for v in s.volumes if v.source is None}
    if probes:
        meta["probes"] = probes
    doc = {"name": app.name, "services": services, "networks": networks, "x-homelab": meta}
    header = f"# written by homelab for app {app.name}: edit the config, not this file\n"
    if secrets:
        header += f"# secrets are read by compose from {env_file} (docker compose --env-file {env_file})\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000, default_flow_style=False)


def _mount(v: Volume, data_dir: str, scope: Scope) -> dict[str, object]:
    source = fill(v.source, scope) if v.source else f"{data_dir}/{v.name}"
    out: dict[str, object] = {"type": "bind", "source": source, "target": v.path}
    if v.read_only:
        out["read_only"] = True
    return out


def _ports(app: App, recipe: Recipe, svc: ServiceSpec, http_on: list[str], publish_on: list[str]) -> list[str]:
    out: list[str] = []
    http = recipe.http
    for p in svc.ports:
        if http is not None and http.service == svc.name and http.port == p.name and app.port is not None:
            out.extend(f"{a}:{app.port}:{p.port}/{p.protocol}" for a in http_on)
        if p.publish:
            out.extend(f"{a}:{p.port}:{p.port}/{p.protocol}" for a in publish_on)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------ secrets ----
def _generator(kind: str, length: int) -> str:
    if kind == "base64":  # the recipe's length counts random bytes here (host_secrets' counts characters)
        return f"head -c {length} /dev/urandom | base64 -w0"
    return KINDS[kind].format(n=length, half=(length + 1) // 2)


def _own_secrets(recipe: Recipe, path: str) -> list[str]:
    q = shlex.quote(path)
    lines = [f"mkdir -p \"$(dirname {q})\"", f"[ -f {q} ] || : >{q}", f"chmod 600 {q}"]
    for s in recipe.secrets:
        var = secret_variable(s.name)
        # the value goes through a pipe into the shell and out by the builtin printf: in no argv
        lines.append(f"grep -q '^{var}=' {q} || {{ v=$({_generator(s.kind, s.length)}) && [ -n \"$v\" ] && "
                     f"printf '%s\\n' \"{var}=$v\" >>{q}; }}")
    return lines


def render_secrets_script(app: App, recipe: Recipe, path: str, deps: Deps | None = None) -> str:
    """One `sh` command: the app's missing secrets generated into `path` (0600), existing ones kept;
    a provider's secrets it uses (same machine) made if missing and copied in fresh. Prints nothing."""
    for p in (path, *(o.env_file for o, _ in (deps or {}).values())):
        if not SAFE_PATH.match(p) or ".." in p.split("/"):
            raise HomelabError(f"unsafe env file path {p!r}")
    lines = ["set -eu", "umask 077", *_own_secrets(recipe, path)]
    copies: list[str] = []
    for alias, (other, other_recipe) in sorted((deps or {}).items()):
        used = {n for _, v in other_recipe.provides for n in secret_names(v)}
        if not used:
            continue
        lines += _own_secrets(other_recipe, other.env_file)
        src = shlex.quote(other.env_file)
        for name in sorted(used):
            missing = shlex.quote(f"{other.name} has no secret {name} yet")
            copies.append(f"v=$(sed -n 's/^{secret_variable(name)}=//p' {src}); "
                          f"[ -n \"$v\" ] || {{ echo {missing} >&2; exit 1; }}; "
                          f"printf '%s\\n' \"{dep_variable(alias, name)}=$v\" >>\"$t\"")
    if copies:
        q = shlex.quote(path)
        lines += [f"t={shlex.quote(path + '.new')}", f"grep -v '^HOMELAB_DEP_' {q} >\"$t\" || :", *copies,
                  f"if cmp -s \"$t\" {q}; then rm -f \"$t\"; else mv -f \"$t\" {q}; fi"]
    return "(" + "; ".join(lines) + ")"


# ------------------------------------------------------------------ systemd ----
def _unit_word(arg: str) -> str:
    """One ExecStart word: `%` and `$` are specifiers/variables to systemd, so doubled; quoted
    when it holds spaces, quotes or backslashes."""
    word = arg.replace("%", "%%").replace("$", "$$")
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_service_unit(app: App, recipe: Recipe, data_dir: str, env_file: str | None = None) -> str:
    """A hardened systemd unit running the recipe's one service from its Debian package, as the
    recipe's system user (the layer creates it and gives it `data_dir`), writing only `data_dir`."""
    if recipe.kind != "service":
        raise HomelabError(f"{app.name}: recipe {recipe.name} is compose, not a service")
    svc = recipe.services[0]
    texts = [*svc.command, *(v for _, v in svc.environment)]
    if any(secret_names(t) for t in texts) or recipe.requires:
        raise HomelabError(f"{app.name}: a service-kind recipe cannot use secrets or other apps yet",
                           "not supported: a value would land in the unit or the process's arguments")
    scope = scope_for(app, recipe, secret=lambda n: "", data=data_dir)
    argv = [fill(a, scope) for a in svc.command]
    lines = [
        f"# written by homelab for app {app.name}: edit the config, not this file",
        "[Unit]",
        f"Description=homelab app {app.name} ({recipe.name} {recipe.upstream_version}, Debian package {recipe.package})",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
    ]
    if svc.user:
        lines += [f"User={svc.user}", f"Group={svc.user}"]
    else:
        lines += ["DynamicUser=yes"]
    lines += [f"ExecStart={' '.join(_unit_word(a) for a in argv)}"]
    for k, v in sorted(svc.environment):
        lines.append(f"Environment={_unit_word(k + '=' + fill(v, scope))}")
    if env_file and recipe.secrets:
        lines.append(f"EnvironmentFile={env_file}")
    lines += [
        f"WorkingDirectory={data_dir}",
        "Restart=on-failure",
        "RestartSec=5",
        "UMask=0027",
        # sandbox: the whole file system read-only but the app's data; no privilege gain
        "ProtectSystem=strict",
        f"ReadWritePaths={data_dir}",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",  # netlink: interface lists (discovery)
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def unit_name(app: App) -> str:
    return f"homelab-{app.name}.service"
