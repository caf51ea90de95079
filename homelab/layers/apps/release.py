"""Releases of a compose app on its host, and the scripts that deploy, roll back and remove them.

On the host (data_root defaults to /srv/homelab):

    <data_root>/<app>/
        releases/<id>/compose.yaml   the project as rendered (images by pinned id, no secret)
        releases/<id>/release.json   image refs and digests, the env file's name
        releases/order               ids that went live, oldest first (the last KEEP stay)
        current -> releases/<id>     what runs
        secrets.env                  0600, generated here once, read by compose for ${...}
        data/<volume>/               bind-mounted volumes: never removed without purge

A release id is a hash of its compose file, so deploying the same thing twice is the same
release and compose, which recreates only services whose configuration changed, restarts
nothing. Every script is rendered here (pure) and runs as one `sh -s` on the host.

Secrets: the generator reads /dev/urandom through pipes and writes with the shell's builtin
`printf`, so a value is in no process's arguments, no output and no file but secrets.env;
compose interpolates `${HOMELAB_SECRET_X}` from that file at `up` time.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping

import yaml

from homelab.errors import HomelabError
from homelab.layers.apps.docker import PortBinding
from homelab.layers.apps.pins import ImagePin

DATA_ROOT = "/srv/homelab"
KEEP = 3  # releases kept per app (the current one and the two before it)
WAIT_TIMEOUT = 120  # seconds `up --wait` gives the services to turn healthy
SECRETS_FILE = "secrets.env"
APP_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")  # compose project names are [a-z0-9_-]; ours stricter
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")
SECRET_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
SECRET_REF = re.compile(r"\$\{secret\.([a-z][a-z0-9_]{0,39})\}")
SECRET_KINDS = ("password", "token", "hex", "base64")

# exit codes of the deploy script (and what the layer makes of them)
FAILED = 1  # the first release failed: nothing to go back to
ROLLED_BACK = 3  # the new release failed its health gate; the previous one runs again
ROLLBACK_FAILED = 4  # ... and the previous one did not come back healthy either
IMAGE_MISSING = 5  # a pinned image is neither on the host nor pullable
NO_PREVIOUS = 6  # rollback by hand: no earlier release is kept


def check_name(kind: str, value: str, pattern: re.Pattern[str] = APP_NAME) -> str:
    if not pattern.fullmatch(value):
        raise HomelabError(f"{kind} name {value!r} is not allowed",
                           f"use lowercase letters, digits and '-' (matching {pattern.pattern})")
    return value


@dataclass(frozen=True)
class Secret:
    """A value generated on the host once: `password`/`token` letters+digits, `hex`, `base64` of bytes."""

    name: str
    kind: str = "password"
    length: int = 32  # characters (password, token, hex), bytes before encoding (base64)

    @property
    def variable(self) -> str:
        return "HOMELAB_SECRET_" + self.name.upper()


@dataclass(frozen=True)
class Healthcheck:
    """Compose healthcheck, exec form (no shell in the image is needed)."""

    test: tuple[str, ...]
    interval_s: int = 2
    timeout_s: int = 3
    retries: int = 5
    start_period_s: int = 0


@dataclass(frozen=True)
class Volume:
    """A bind mount of <app dir>/data/<name>; `owner` ("uid:gid") chowns it when first made."""

    name: str
    container_path: str
    owner: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class Service:
    name: str
    image: ImagePin
    command: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)  # values may hold ${secret.NAME}
    ports: tuple[PortBinding, ...] = ()
    volumes: tuple[Volume, ...] = ()
    healthcheck: Healthcheck | None = None
    depends_on: tuple[str, ...] = ()
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None
    init: bool = False  # docker-init (tini) as PID 1: for images whose process ignores SIGTERM as PID 1


@dataclass(frozen=True)
class App:
    """One compose project on one host, fully resolved (variables filled in, images pinned)."""

    name: str
    services: tuple[Service, ...]
    secrets: tuple[Secret, ...] = ()
    data_root: str = DATA_ROOT
    wait_timeout: int = WAIT_TIMEOUT
    mesh_addresses: tuple[str, ...] = ()  # where ports may be published besides loopback

    @property
    def dir(self) -> str:
        return f"{self.data_root.rstrip('/')}/{self.name}"


def compose_value(text: str, secrets: Mapping[str, Secret] | None) -> str:
    """A value for compose: `$` escaped, `${secret.x}` -> `${HOMELAB_SECRET_X}`.

    `secrets` None: no secret may appear (commands: a process's arguments are public on the host)."""
    out, pos = [], 0
    for m in SECRET_REF.finditer(text):
        if secrets is None:
            raise HomelabError(f"${{secret.{m.group(1)}}} in a command would show in the host's process list",
                               "pass secrets through environment variables")
        if m.group(1) not in secrets:
            raise HomelabError(f"${{secret.{m.group(1)}}} names no secret of this app",
                               f"secrets are: {', '.join(sorted(secrets)) or 'none'}")
        out.append(text[pos:m.start()].replace("$", "$$"))
        out.append("${" + secrets[m.group(1)].variable + "}")
        pos = m.end()
    out.append(text[pos:].replace("$", "$$"))
    return "".join(out)


def render_compose(app: App) -> str:
    """The compose file of a release: deterministic text, no secret values in it."""
    check_name("app", app.name)
    secrets = {s.name: s for s in app.secrets}
    names = {s.name for s in app.services}
    services: dict[str, object] = {}
    for svc in app.services:
        check_name("service", svc.name, SERVICE_NAME)
        missing = [d for d in svc.depends_on if d not in names]
        if missing:
            raise HomelabError(f"{app.name}.{svc.name} depends on {', '.join(missing)}, not a service of this app")
        spec: dict[str, object] = {"image": svc.image.image_id, "pull_policy": "never", "restart": "unless-stopped"}
        if svc.entrypoint is not None:
            spec["entrypoint"] = [compose_value(a, None) for a in svc.entrypoint]
        if svc.command:
            spec["command"] = [compose_value(a, None) for a in svc.command]
        if svc.user:
            spec["user"] = svc.user
        if svc.init:
            spec["init"] = True
        if svc.environment:
            spec["environment"] = {k: compose_value(v, secrets) for k, v in sorted(svc.environment.items())}
        if svc.ports:
            spec["ports"] = [p.render(app.mesh_addresses) for p in svc.ports]
        if svc.volumes:
            spec["volumes"] = [f"{app.dir}/data/{v.name}:{v.container_path}{':ro' if v.read_only else ''}"
                               for v in svc.volumes]
        if svc.healthcheck:
            h = svc.healthcheck
            spec["healthcheck"] = {"test": ["CMD", *h.test], "interval": f"{h.interval_s}s",
                                   "timeout": f"{h.timeout_s}s", "retries": h.retries,
                                   "start_period": f"{h.start_period_s}s"}
        if svc.depends_on:
            by_name = {s.name: s for s in app.services}
            spec["depends_on"] = {d: {"condition": "service_healthy" if by_name[d].healthcheck else "service_started"}
                                  for d in svc.depends_on}
        services[svc.name] = spec
    doc = {
        "name": app.name,
        # for people reading the file: what each pinned id is (compose ignores x- keys)
        "x-homelab": {"images": {s.name: s.image.describe() for s in app.services}},
        "services": services,
    }
    return "# written by homelab: edit the config, not this file\n" + yaml.safe_dump(doc, sort_keys=False, width=1000)


def release_id(compose_text: str) -> str:
    return hashlib.sha256(compose_text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------ host scripts ----

def _generator(secret: Secret) -> str:
    """Shell that prints a fresh value (to the pipe of the builtin that stores it)."""
    n = secret.length
    if secret.kind in ("password", "token"):
        return f"tr -dc A-Za-z0-9 </dev/urandom | head -c {n}"
    if secret.kind == "hex":
        return f"head -c {(n + 1) // 2} /dev/urandom | od -An -v -tx1 | tr -d ' \\n' | head -c {n}"
    if secret.kind == "base64":
        return f"head -c {n} /dev/urandom | base64 -w0"
    raise HomelabError(f"secret {secret.name}: kind {secret.kind!r} unknown", f"use one of {', '.join(SECRET_KINDS)}")


@dataclass(frozen=True)
class Release:
    """Everything one deploy writes and runs, already rendered (pure): the layer builds it from
    a recipe, the tests from a hand-made `App`."""

    name: str
    dir: str  # <data_root>/<app>
    compose: str  # compose.yaml text (no secret in it)
    images: tuple[tuple[ImagePin, str], ...] = ()  # (pin, what the host pulls when it lacks the id)
    volumes: tuple[tuple[str, str | None], ...] = ()  # (name, owner "uid:gid") under <dir>/data
    secrets: tuple[str, ...] = ()  # shell lines that make missing secrets in <dir>/secrets.env
    wait_timeout: int = WAIT_TIMEOUT

    @property
    def id(self) -> str:
        return release_id(self.compose)

    def release_json(self) -> str:
        images = {p.ref: {"image_id": p.image_id, "digest": p.digest} for p, _ in self.images}
        return json.dumps({"app": self.name, "images": images, "env_file": SECRETS_FILE}, indent=2,
                          sort_keys=True) + "\n"


def release_of(app: App) -> Release:
    """A hand-made App (tests, tools) as a Release."""
    lines = []
    for s in app.secrets:
        check_name("secret", s.name, SECRET_NAME)
        lines.append(f"grep -q '^{s.variable}=' \"$A/{SECRETS_FILE}\" || "
                     f"printf '{s.variable}=%s\\n' \"$({_generator(s)})\" >> \"$A/{SECRETS_FILE}\"")
    images = tuple((i, i.pull_ref if i.digest else "") for i in
                   sorted({s.image.image_id: s.image for s in app.services}.values(), key=lambda i: i.ref))
    volumes = tuple(sorted({v.name: (v.name, v.owner) for s in app.services for v in s.volumes}.values()))
    return Release(app.name, app.dir, render_compose(app), images, volumes, tuple(lines), app.wait_timeout)


def _common(name: str, app_dir: str, wait_timeout: int = WAIT_TIMEOUT) -> list[str]:
    check_name("app", name)
    a, p = shlex.quote(app_dir), shlex.quote(name)
    return [
        "set -eu",
        f"A={a}",
        # compose: this project, its directory, a release's file, the generated secrets
        f"compose() {{ r=$1; shift; docker compose -p {p} --project-directory \"$A\" "
        f"-f \"$A/releases/$r/compose.yaml\" --env-file \"$A/{SECRETS_FILE}\" \"$@\"; }}",
        f"up() {{ compose \"$1\" up -d --wait --wait-timeout {int(wait_timeout)} --remove-orphans; }}",
        'switch() { ln -sfn "releases/$1" "$A/current.new" && mv -T "$A/current.new" "$A/current"; }',
        'current() { r=$(readlink "$A/current" 2>/dev/null) || return 0; echo "${r##*/}"; }',
        # what failed: state, health log and output of every container that is not healthy
        f"report() {{ for c in $(docker compose -p {p} ps -a -q); do "
        "docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' \"$c\"; "
        # each health result on one line (JSON-escaped), its start and its end (where the error is)
        "docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{json .Output}}"
        "{{println}}{{end}}{{end}}' \"$c\" | grep . | tail -n 2 | sed -E 's/^(.{60}).*(.{200})$/\\1 ... \\2/; s/^/  health: /'; "
        "docker logs --tail 20 \"$c\" 2>&1 | sed 's/^/  log: /'; done; }",
    ]


def render_deploy_script(app: App) -> str:
    return render_release_deploy(release_of(app))


def render_release_deploy(rel: Release) -> str:
    """Write the release, gate it on health, roll back by itself on failure (see the exit codes)."""
    text = rel.compose
    rid = rel.id
    lines = _common(rel.name, rel.dir, rel.wait_timeout) + [
        'mkdir -p "$A/releases" "$A/data"',
        # secrets: the file is 0600 from its first byte; a value is made once and never printed
        f'( umask 077; [ -f "$A/{SECRETS_FILE}" ] || : > "$A/{SECRETS_FILE}" )',
        f'chmod 600 "$A/{SECRETS_FILE}"',
        *rel.secrets,
    ]
    for name, owner in rel.volumes:
        d = f'"$A/data/"{shlex.quote(name)}'
        chown = f" && chown {shlex.quote(owner)} {d}" if owner else ""
        lines.append(f"[ -d {d} ] || {{ mkdir -p {d}{chown}; }}")
    for image, pull in rel.images:
        iid = shlex.quote(image.image_id)
        # pulled by digest, then checked: the bytes must be the pinned image
        get = (f"{{ docker pull -q {shlex.quote(pull)} >/dev/null && "
               f"[ \"$(docker image inspect -f '{{{{.Id}}}}' {shlex.quote(pull)})\" = {iid} ]; }}"
               if pull else "false")
        lines.append(f"docker image inspect {iid} >/dev/null 2>&1 || {get} || "
                     f"{{ echo \"image {image.ref} ({image.image_id}) is not on this host and cannot be pulled "
                     f"at its pin\" >&2; exit {IMAGE_MISSING}; }}")
    lines += [
        f"R={rid}",
        'prev=$(current)',
        'if [ ! -f "$A/releases/$R/compose.yaml" ]; then',
        '  rm -rf "$A/releases/$R.new" && mkdir -p "$A/releases/$R.new"',
        "  cat > \"$A/releases/$R.new/compose.yaml\" <<'HOMELAB_EOF'",
        text.rstrip("\n"),
        "HOMELAB_EOF",
        "  cat > \"$A/releases/$R.new/release.json\" <<'HOMELAB_EOF'",
        rel.release_json().rstrip("\n"),
        "HOMELAB_EOF",
        '  mv "$A/releases/$R.new" "$A/releases/$R"',
        "fi",
        'switch "$R"',
        'if up "$R" >"$A/deploy.log" 2>&1; then',
        '  o="$A/releases/order"',
        '  { grep -vx "$R" "$o" 2>/dev/null || true; echo "$R"; } > "$o.new" && mv "$o.new" "$o"',
        f'  keep=$(tail -n {KEEP} "$o"); printf "%s\\n" "$keep" > "$o.new" && mv "$o.new" "$o"',
        '  for d in "$A"/releases/*/; do d=${d%/}; printf "%s\\n" "$keep" | grep -qx "${d##*/}" || rm -rf "$d"; done',
        '  if [ "$prev" = "$R" ]; then echo "unchanged $R"; else echo "deployed $R"; fi',
        "  exit 0",
        "fi",
        'echo "release $R failed its health gate:" >&2',
        'sed "s/^/  compose: /" "$A/deploy.log" | tail -n 8 >&2',
        "report >&2",
        'if [ -n "$prev" ] && [ "$prev" != "$R" ] && [ -f "$A/releases/$prev/compose.yaml" ]; then',
        '  switch "$prev"',
        f'  if up "$prev" >>"$A/deploy.log" 2>&1; then echo "rolled-back $R $prev"; exit {ROLLED_BACK}; fi',
        '  echo "rollback to $prev failed too:" >&2; report >&2',
        f'  echo "rollback-failed $R $prev"; exit {ROLLBACK_FAILED}',
        "fi",
        f'echo "failed $R"; exit {FAILED}',
    ]
    return "\n".join(lines) + "\n"


def render_rollback_script(app: App) -> str:
    """By hand: run the release that went live before the current one (the order file is kept)."""
    return "\n".join(_common(app.name, app.dir, app.wait_timeout) + [
        'cur=$(current)',
        'prev=$(grep -B1 -x "$cur" "$A/releases/order" 2>/dev/null | head -n 1)',
        f'if [ -z "$cur" ] || [ -z "$prev" ] || [ "$prev" = "$cur" ]; then echo "no release before ${{cur:-none}}" >&2; '
        f'exit {NO_PREVIOUS}; fi',
        'switch "$prev"',
        'if up "$prev" >"$A/deploy.log" 2>&1; then echo "rolled-back $cur $prev"; exit 0; fi',
        'echo "release $prev failed its health gate:" >&2; report >&2',
        'switch "$cur"; up "$cur" >>"$A/deploy.log" 2>&1 || true',
        f'echo "failed $prev"; exit {FAILED}',
    ]) + "\n"


def render_remove_script(app: App, purge: bool = False) -> str:
    """Stop and remove the containers (`down` without -v); data, secrets and releases stay unless `purge`."""
    lines = _common(app.name, app.dir) + [
        '[ -d "$A" ] || { echo "absent"; exit 0; }',
        'cur=$(current)',
        'if [ -n "$cur" ] && [ -f "$A/releases/$cur/compose.yaml" ]; then compose "$cur" down --remove-orphans >&2; '
        f'else docker compose -p {shlex.quote(app.name)} down --remove-orphans >&2; fi',
        'rm -f "$A/current"',
    ]
    if purge:
        # the app's own directory only: the name was checked against APP_NAME, the root is the config's
        lines.append('rm -rf -- "$A"; echo "purged"')
    else:
        lines.append('echo "removed (data kept in $A/data)"')
    check_name("app", app.name)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    """What a deploy or rollback did, from its exit code and last output line."""

    status: str  # deployed | unchanged | rolled-back | rollback-failed | failed | image-missing | no-previous
    release: str = ""  # the release asked for
    running: str = ""  # the release running now ("" if unknown)
    detail: str = ""  # stderr: compose's complaint, health log, container output

    @property
    def ok(self) -> bool:
        return self.status in ("deployed", "unchanged")


def parse_outcome(rc: int, stdout: str, stderr: str) -> Outcome:
    last = (stdout.strip().splitlines() or [""])[-1].split()
    word, args = (last[0], last[1:]) if last else ("", [])
    detail = stderr.strip()
    if rc == 0 and word in ("deployed", "unchanged") and args:
        return Outcome(word, args[0], args[0])
    if word == "rolled-back" and len(args) == 2:  # automatic (rc 3) or by hand (rc 0)
        return Outcome("rolled-back", args[0], args[1], detail)
    if rc == ROLLBACK_FAILED and len(args) == 2:
        return Outcome("rollback-failed", args[0], "", detail)
    if rc == IMAGE_MISSING:
        return Outcome("image-missing", detail=detail)
    if rc == NO_PREVIOUS:
        return Outcome("no-previous", detail=detail)
    return Outcome("failed", args[0] if args else "", "", detail or f"exit {rc}: {stdout.strip()[-500:]}")
