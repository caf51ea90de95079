"""Recipes: one YAML file per app, parsed with positions like the config (pure, no I/O).

A recipe says what an app is, which images (or which Debian package) run it, its services
with their volumes, ports and health checks, the variables a config fills in, the secrets
generated on the host, what to back up (and how to dump/restore/verify a database), the HTTP
it serves for ingress, and which other recipes it needs. The apps layer renders compose
files or systemd units from the `Recipe` value; nothing here touches a host.

Values in `environment`, `command`, `entrypoint`, a volume's `source` and `provides` may
interpolate `${var.NAME}`, `${secret.NAME}`, `${app.name}`, `${app.data}`, `${app.host}` and
`${dep.ALIAS.KEY}`; `$$` is a literal `$`. Every reference is checked here; a `dep` key is
checked against the required recipe by the catalog (it needs the other file).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, TypeVar

from homelab.config.reader import (ENV_VAR, HOSTNAME, NAME, PACKAGE, USER, Problems, Section, describe_type,
                                   suggest)
from homelab.config.yamlpos import Located, load_located
from homelab.errors import ConfigError

T = TypeVar("T")
Kind = Literal["compose", "service"]
VarType = Literal["string", "integer", "boolean", "hostname", "email", "path"]
SecretKind = Literal["password", "token", "hex", "base64"]
VolumeKind = Literal["data", "cache", "config"]

KINDS: tuple[str, ...] = ("compose", "service")
VAR_TYPES: tuple[str, ...] = ("string", "integer", "boolean", "hostname", "email", "path")
SECRET_KINDS: tuple[str, ...] = ("password", "token", "hex", "base64")
VOLUME_KINDS: tuple[str, ...] = ("data", "cache", "config")
PROTOCOLS: tuple[str, ...] = ("tcp", "udp")

# Docker reference grammar (distribution/reference), simplified: optional registry host[:port],
# lowercase path components; a tag of word characters. `latest` moves, so it is refused.
REPOSITORY = re.compile(r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # variable, secret, volume, port, image keys
CONTAINER_PATH = re.compile(r"^/[A-Za-z0-9_./@+-]*$")
HTTP_PATH = re.compile(r"^/[A-Za-z0-9_./?=&%:@+-]*$")
CONTAINER_USER = re.compile(r"^([0-9]{1,10}(:[0-9]{1,10})?|[a-z_][a-z0-9_-]{0,31})$")
EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
HOST_PATH = re.compile(r"^/[A-Za-z0-9_./@+-]*$")
URL = re.compile(r"^https?://\S+$")

# ${scope.name} or ${dep.alias.key}; `$$` escapes a dollar
REF = re.compile(r"\$\$|\$\{([^}]*)\}|\$")
APP_KEYS: tuple[str, ...] = ("name", "data", "host")
SCOPES: tuple[str, ...] = ("var", "secret", "app", "dep")


@dataclass(frozen=True)
class Variable:
    """A value the config sets per app (`apps[].variables`); `default` is typed by `type`."""

    name: str
    type: VarType
    default: str | int | bool | None = None
    description: str = ""
    required: bool = False  # a required variable has no default: the config must set it


@dataclass(frozen=True)
class SecretSpec:
    """A secret generated once on the host and kept there (0600), never in state or output.
    `length`: characters for password/token/hex, random bytes for base64."""

    name: str
    kind: SecretKind
    length: int


@dataclass(frozen=True)
class ImageRef:
    repository: str  # as pulled: "vaultwarden/server", "ghcr.io/immich-app/immich-server"
    tag: str  # pinned, never "latest"; the digest is locked beside the config on first pull

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Volume:
    """A directory the service keeps. Without `source` it is `${app.data}/<name>` on the host,
    created by homelab; `data` is backed up, `config` too, `cache` never. `path` is where the
    container sees it (compose); a service-kind unit gets the host directory itself."""

    name: str
    path: str | None
    kind: VolumeKind = "data"
    source: str | None = None  # a host path the person owns (e.g. "${var.media_dir}"); not backed up
    read_only: bool = False


@dataclass(frozen=True)
class Port:
    """A port the service listens on inside its container (or on the host, service kind)."""

    name: str
    port: int
    protocol: str = "tcp"
    publish: bool = False  # reachable from other machines (peers, LAN), not only through ingress


@dataclass(frozen=True)
class HealthCheck:
    """Exactly one of `command` (run inside the container / on the host for the service kind;
    exit 0 = healthy), `http` (GET `path` on the service's port `port`, answered with
    `expect`), or `tcp` (a connect to that port). Times in seconds."""

    command: tuple[str, ...] = ()
    http_path: str | None = None
    http_expect: int = 200
    port: str | None = None  # a port name of the service (http and tcp checks)
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int = 0

    @property
    def form(self) -> str:
        return "command" if self.command else "http" if self.http_path else "tcp"


@dataclass(frozen=True)
class ServiceSpec:
    """One container of a compose recipe, or the one systemd unit of a service recipe."""

    name: str
    image: str | None  # a key of Recipe.images (compose); None for the service kind
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()  # ordered (NAME, template) pairs
    volumes: tuple[Volume, ...] = ()
    ports: tuple[Port, ...] = ()
    healthcheck: HealthCheck | None = None
    user: str | None = None  # "uid:gid" / name inside the image; service kind: the system user
    depends_on: tuple[str, ...] = ()  # services of this recipe, started healthy first
    read_only: bool = False  # read-only root filesystem (volumes stay writable)
    host_network: bool = False  # only for apps that need LAN discovery (Home Assistant)

    def port(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


@dataclass(frozen=True)
class HttpSpec:
    """What ingress (layer 5) routes to, and the app's own health URL the monitors poll."""

    service: str
    port: str  # a port name of that service
    health_path: str = "/"
    expect_status: int = 200


@dataclass(frozen=True)
class DumpSpec:
    """A consistent copy of a database: `command` writes the dump to stdout (run in `service`),
    `restore` reads it from stdin, `verify` exits 0 when a restored copy is sound (its last line of
    output is the drill's result, e.g. a row count). `ready` exits 0 once a fresh instance takes the
    restore; empty: the service's health check command."""

    service: str
    command: tuple[str, ...]
    restore: tuple[str, ...]
    verify: tuple[str, ...]
    filename: str  # how the dump is named in the backup, e.g. "postgres.sql"
    ready: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupSpec:
    volumes: tuple[str, ...] = ()  # volume names (default: every data and config volume)
    dump: DumpSpec | None = None


@dataclass(frozen=True)
class Requirement:
    """Another app this one needs (the config says which app fills it). Its `provides` values
    reach this recipe's services as `${dep.ALIAS.KEY}`; `keys` are the ones used here."""

    recipe: str
    alias: str
    keys: tuple[str, ...] = ()
    # where the file names the recipe and uses each key: for the catalog's cross-file check
    at: tuple[int, int] = field(default=(1, 1), compare=False, repr=False)
    key_at: tuple[tuple[str, int, int], ...] = field(default=(), compare=False, repr=False)  # (key, line, col)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    homepage: str
    upstream_version: str
    sources: tuple[str, ...]
    kind: Kind
    memory_mb: int
    variables: tuple[Variable, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()
    images: tuple[tuple[str, ImageRef], ...] = ()  # ordered (key, image)
    services: tuple[ServiceSpec, ...] = ()
    package: str | None = None  # service kind: the Debian package
    http: HttpSpec | None = None
    backup: BackupSpec = field(default_factory=BackupSpec)
    requires: tuple[Requirement, ...] = ()
    provides: tuple[tuple[str, str], ...] = ()  # values other apps read as ${dep.ALIAS.KEY}
    unverified: tuple[str, ...] = ()  # details nobody could confirm from the app's docs
    file: str = field(default="", compare=False)

    def image(self, key: str) -> ImageRef | None:
        return dict(self.images).get(key)

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)


TOP_KEYS = ["name", "description", "homepage", "upstream_version", "sources", "kind", "memory_mb",
            "variables", "secrets", "images", "services", "package", "http", "backup", "requires",
            "provides", "unverified"]
SERVICE_KEYS = ["image", "command", "entrypoint", "environment", "volumes", "ports", "healthcheck", "user",
                "depends_on", "read_only", "host_network"]
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,127}$")
FILENAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def parse_recipe(text: str, file: Path | str, expect_name: str | None = None) -> Recipe:
    """Parse one recipe file; raise ConfigError with every problem, located. `expect_name`:
    the name the catalog found it under (its file name), which `name:` must repeat."""
    filename = str(file)
    problems = Problems(filename)
    root = load_located(text, filename)
    sec = Section(root, "", problems)
    recipe = _RecipeParser(sec, text.splitlines()).parse()
    if recipe is not None and expect_name is not None and recipe.name != expect_name:
        sec.fail(sec.raw("name"), "name", f"{recipe.name!r} differs from the file name {expect_name!r}",
                 f"name the file {recipe.name}.yaml, or write name: {expect_name}")
    if problems.items or recipe is None:
        raise ConfigError(problems.items)
    return recipe


def vtype_phrase(vtype: str) -> str:
    return {"integer": "an integer", "boolean": "true or false"}.get(vtype, f"a {vtype}")


def type_problem(v: object, vtype: str) -> str | None:
    """Why `v` (a YAML value) is not of variable type `vtype`, or None: recipe defaults and the
    config's values are checked by this one rule."""
    if vtype == "integer":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif vtype == "boolean":
        ok = isinstance(v, bool)
    else:
        text_pattern = {"hostname": HOSTNAME, "email": EMAIL, "path": HOST_PATH}.get(vtype)
        ok = isinstance(v, str) and (text_pattern is None or bool(text_pattern.match(v)))
    if ok:
        return None
    if isinstance(v, str) and vtype not in ("integer", "boolean"):
        return f"{v!r} is not a valid {vtype}"
    return f"should be {vtype_phrase(vtype)}, not {describe_type(v)}"


class _RecipeParser:
    """Walks one recipe. Names (variables, secrets, aliases) are collected first; templates are
    checked at the end, when every name they may refer to is known."""

    def __init__(self, sec: Section, lines: list[str]) -> None:
        self.sec = sec
        self.lines = lines
        self.vars: dict[str, Variable] = {}
        self.secrets: dict[str, SecretSpec] = {}
        self.aliases: dict[str, list[tuple[str, int, int]]] = {}  # alias -> provides keys used (key, line, col)
        self.templates: list[tuple[Located, str]] = []  # (node, dotted path)
        self.depends_at: dict[str, tuple[Located | None, str]] = {}
        self.images_used: set[str] = set()  # also by services that failed: no knock-on error

    def parse(self) -> Recipe | None:
        sec = self.sec
        name = sec.text("name", required=True, pattern=NAME, hint="lowercase letters, digits and '-', like 'vaultwarden'")
        description = sec.text("description", "", required=True) or ""
        homepage = sec.text("homepage", "", required=True, pattern=URL, hint="an http(s) URL") or ""
        version = self._version(sec, "upstream_version") or ""
        if not sec.has("sources"):
            sec.fail(sec.node, "sources", "is required", "list the URLs of the documentation this recipe follows")
        sources = sec.str_list("sources", pattern=URL, hint="an http(s) URL")
        kind = sec.text("kind", "compose", choices=KINDS) or "compose"
        memory = sec.integer("memory_mb", required=True, lo=16, hi=1_048_576) or 0
        self.vars = {v.name: v for v in self._named(sec, "variables", self._variable)}
        self.secrets = {s.name: s for s in self._named(sec, "secrets", self._secret)}
        images = dict(self._named(sec, "images", self._image))
        requires = [r for r in (self._requirement(item) for item in sec.items_of("requires")) if r is not None]
        package = sec.text("package", pattern=PACKAGE, hint="a Debian package name like 'syncthing'")
        services = dict(self._named(sec, "services", lambda s, n, p: self._service(s, n, p, kind, self._declared(sec, "images"))))
        provides = self._env(sec, "provides", KEY, "lowercase letters, digits and '_', like 'password'")
        unverified = sec.str_list("unverified")
        self._check_kind(kind, package, images, services)
        self._check_depends(services)
        if kind == "compose":
            self._check_images_used(images)
        volumes = self._check_volumes(services)
        http = self._http(sec.section("http"), services)
        backup = self._backup(sec.section("backup"), services, volumes)
        sec.done(TOP_KEYS)
        for node, path in self.templates:
            self._check_template(node, path)
        if not sec.ok or name is None:
            return None
        return Recipe(
            name=name, description=description, homepage=homepage, upstream_version=version,
            sources=sources, kind=kind, memory_mb=memory,  # type: ignore[arg-type]
            variables=tuple(self.vars.values()), secrets=tuple(self.secrets.values()),
            images=tuple(images.items()), services=tuple(services.values()), package=package, http=http,
            backup=backup, requires=tuple(self._with_keys(r) for r in requires), provides=provides,
            unverified=unverified, file=sec.problems.file)

    # -- small helpers ------------------------------------------------------------------------

    def _version(self, s: Section, key: str) -> str | None:
        """A version or tag; a YAML number (1.10 reads as 1.1) must be quoted."""
        node = s.raw(key)
        if node is not None and isinstance(node.value, float):
            s.fail(node, s.sub(key), f"{node.value!r} was read as a number", f"quote it: \"{node.value}\"")
            return None
        return s.text(key, required=True, pattern=VERSION, hint="a version like \"1.34.3\"")

    def _named(self, sec: Section, key: str, parse: Callable[[Section | Located, str, str], T | None]) -> list[T]:
        """Items of a mapping `key: {NAME: ...}`: each name checked, each value parsed with it."""
        node = sec.raw(key)
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, dict):
            sec.fail(node, sec.sub(key), f"should be a mapping of names, not {describe_type(node.value)}")
            return []
        out: list[T] = []
        for name, item in node.value.items():
            path = f"{sec.sub(key)}.{name}"
            if not KEY.match(name):
                sec.fail(item, path, f"{name!r} is not allowed as a name",
                         "lowercase letters, digits and '_', starting with a letter", key=True)
                continue
            obj = parse(Section(item, path, sec.problems) if isinstance(item.value, dict) else item, name, path)
            if obj is not None:
                out.append(obj)
        return out

    @staticmethod
    def _declared(sec: Section, key: str) -> list[str]:
        """Names under `key:` as written, also those that failed to parse (no knock-on errors)."""
        node = sec.items.get(key)
        return list(node.value) if node is not None and isinstance(node.value, dict) else []

    def _mapping(self, s: Section | Located, path: str, example: str) -> Section | None:
        if isinstance(s, Section):
            return s
        self.sec.fail(s, path, f"should be a mapping, not {describe_type(s.value)}", f"e.g. {example}")
        return None

    def _argv(self, s: Section, key: str) -> tuple[str, ...]:
        """A command as a list of arguments (exec form: no shell unless the recipe names one)."""
        node = s.raw(key)
        if node is None or node.value is None:
            return ()
        if not isinstance(node.value, list):
            s.fail(node, s.sub(key), "should be a list of arguments", "e.g. [\"serve\", \"--port\", \"80\"]")
            return ()
        out: list[str] = []
        for item, path in s.entries(key):
            if isinstance(item.value, (int, float)) and not isinstance(item.value, bool):
                out.append(str(item.value))
            elif isinstance(item.value, str):
                self.templates.append((item, path))
                out.append(item.value)
            else:
                s.fail(item, path, f"should be a string, not {describe_type(item.value)}")
        return tuple(out)

    def _env(self, s: Section, key: str, pattern: re.Pattern[str] = ENV_VAR,
             hint: str = "letters, digits and '_'") -> tuple[tuple[str, str], ...]:
        """`NAME: value` pairs in order; numbers become strings, true/false must be quoted."""
        node = s.raw(key)
        if node is None or node.value is None:
            return ()
        if not isinstance(node.value, dict):
            s.fail(node, s.sub(key), f"should be a mapping of NAME: value, not {describe_type(node.value)}")
            return ()
        out: list[tuple[str, str]] = []
        for name, item in node.value.items():
            path = f"{s.sub(key)}.{name}"
            v = item.value
            if not pattern.match(name):
                s.fail(item, path, f"{name!r} is not allowed as a name", hint, key=True)
            elif isinstance(v, bool):
                s.fail(item, path, "true/false is ambiguous in the environment", "quote it: \"true\" or \"1\"")
            elif isinstance(v, (int, float)):
                out.append((name, str(v)))
            elif not isinstance(v, str):
                s.fail(item, path, f"should be a string, not {describe_type(v)}")
            else:
                self.templates.append((item, path))
                out.append((name, v))
        return tuple(out)

    # -- variables, secrets, images, requirements ----------------------------------------------

    def _variable(self, item: Section | Located, name: str, path: str) -> Variable | None:
        s = self._mapping(item, path, "{type: string, default: ...}")
        if s is None:
            return None
        vtype = s.text("type", "string", choices=VAR_TYPES) or "string"
        description = s.text("description", "") or ""
        required = s.flag("required", False)
        default = None
        node = s.raw("default")
        if node is not None and node.value is not None:
            default = self._typed(s, node, s.sub("default"), vtype)
            if required:
                s.fail(node, s.sub("default"), "a required variable has no default",
                       "drop `required: true` or the default", key=True)
        s.done(["type", "default", "description", "required"])
        return Variable(name, vtype, default, description, required) if s.ok else None  # type: ignore[arg-type]

    def _typed(self, s: Section, node: Located, path: str, vtype: str) -> str | int | bool | None:
        why = type_problem(node.value, vtype)
        if why is None:
            return node.value  # type: ignore[no-any-return]
        s.fail(node, path, why)
        return None

    def _secret(self, item: Section | Located, name: str, path: str) -> SecretSpec | None:
        s = self._mapping(item, path, "{kind: password, length: 32}")
        if s is None:
            return None
        kind = s.text("kind", "password", choices=SECRET_KINDS) or "password"
        length = s.integer("length", 32, lo=16, hi=256) or 32
        s.done(["kind", "length"])
        return SecretSpec(name, kind, length) if s.ok else None  # type: ignore[arg-type]

    def _image(self, item: Section | Located, name: str, path: str) -> tuple[str, ImageRef] | None:
        s = self._mapping(item, path, "{repository: vaultwarden/server, tag: \"1.34.3\"}")
        if s is None:
            return None
        repo = s.text("repository", required=True, pattern=REPOSITORY,
                      hint="an image repository like 'vaultwarden/server' or 'ghcr.io/owner/name'")
        tag = self._version(s, "tag")
        if tag == "latest":
            s.fail(s.raw("tag"), s.sub("tag"), "'latest' is not a pin", "name the version, e.g. \"1.34.3\"")
        s.done(["repository", "tag"])
        if not s.ok or repo is None or tag is None:
            return None
        return name, ImageRef(repo, tag)

    def _requirement(self, s: Section) -> Requirement | None:
        recipe = s.text("recipe", required=True, pattern=NAME, hint="the name of another recipe, like 'postgres'")
        alias = s.text("alias", (recipe or "").replace("-", "_") or None, pattern=KEY,
                       hint="lowercase letters, digits and '_', like 'db'")
        s.done(["recipe", "alias"])
        if not s.ok or recipe is None or alias is None:
            return None
        if alias in self.aliases:
            s.fail(s.raw("alias") or s.node, f"{s.path}.alias", f"alias {alias!r} is used twice",
                   "give each requirement its own alias")
            return None
        self.aliases[alias] = []
        node = s.raw("recipe")
        return Requirement(recipe, alias, at=(node.line, node.col) if node is not None else (1, 1))

    def _with_keys(self, r: Requirement) -> Requirement:
        uses = self.aliases[r.alias]
        return Requirement(r.recipe, r.alias, tuple(dict.fromkeys(k for k, _, _ in uses)), r.at, tuple(uses))

    # -- services -----------------------------------------------------------------------------

    def _service(self, item: Section | Located, name: str, path: str, kind: str, images: list[str]
                 ) -> tuple[str, ServiceSpec] | None:
        s = self._mapping(item, path, "{image: server, ports: {http: 80}}")
        if s is None:
            return None
        image = None
        if kind == "compose":
            image = s.text("image", required=True, pattern=KEY, hint="a key of images:")
            self.images_used.add(image or "")
            if image is not None and image not in images:  # `images`: the declared names
                s.fail(s.raw("image"), s.sub("image"), f"no image {image!r} in images:",
                       suggest(image, list(images)) if images else "declare it under images:")
        elif s.has("image"):
            s.fail(s.raw("image"), s.sub("image"), "a service-kind recipe runs a Debian package, not an image",
                   "set kind: compose, or drop image", key=True)
        command = self._argv(s, "command")
        entrypoint = self._argv(s, "entrypoint")
        environment = self._env(s, "environment")
        volumes = tuple(self._named(s, "volumes", lambda v, n, p: self._volume(v, n, p, kind)))
        ports = self._ports(s)
        health = self._health(s.section("healthcheck"), {p.name for p in ports})
        compose = kind == "compose"
        user = s.text("user", pattern=CONTAINER_USER if compose else USER,
                      hint="\"uid:gid\" like \"1000:1000\", or a user name" if compose else "a system user name")
        depends = s.str_list("depends_on", pattern=KEY, hint="another service of this recipe")
        self.depends_at[name] = (s.raw("depends_on"), s.sub("depends_on"))
        read_only = s.flag("read_only", False)
        host_net = s.flag("host_network", False)
        s.done(SERVICE_KEYS)
        if not s.ok:
            self.sec.ok = False
            return None
        return name, ServiceSpec(name, image, command, entrypoint, environment, volumes, ports, health, user,
                                 depends, read_only, host_net)

    def _volume(self, item: Section | Located, name: str, path: str, kind: str) -> Volume | None:
        path_hint = "an absolute path inside the container, like /data"
        if isinstance(item, Located) and isinstance(item.value, str) and kind == "compose":
            if CONTAINER_PATH.match(item.value):  # short form: `data: /data`
                return Volume(name, item.value)
            self.sec.fail(item, path, f"{item.value!r} is not allowed here", path_hint)
            return None
        v = self._mapping(item, path, "{path: /data, kind: data}")
        if v is None:
            return None
        if kind == "service" and v.has("path"):
            v.fail(v.raw("path"), v.sub("path"), f"a service-kind volume is always ${{app.data}}/{name}",
                   f"drop path; the unit refers to it as ${{app.data}}/{name}", key=True)
            where = None
        else:
            where = v.text("path", required=kind == "compose", pattern=CONTAINER_PATH, hint=path_hint)
        vkind = v.text("kind", "data", choices=VOLUME_KINDS) or "data"
        source = v.text("source")
        if source is not None:
            self.templates.append((v.raw("source"), v.sub("source")))  # type: ignore[arg-type]
        read_only = v.flag("read_only", False)
        v.done(["path", "kind", "source", "read_only"])
        return Volume(name, where, vkind, source, read_only) if v.ok else None  # type: ignore[arg-type]

    def _ports(self, s: Section) -> tuple[Port, ...]:
        """Named ports; the same number and protocol twice in one service is a mistake."""
        node = s.raw("ports")
        nodes = node.value if node is not None and isinstance(node.value, dict) else {}
        seen: dict[tuple[int, str], str] = {}
        out: list[Port] = []
        for port in self._named(s, "ports", self._port):
            key = (port.port, port.protocol)
            if key in seen:
                s.fail(nodes.get(port.name), f"{s.sub('ports')}.{port.name}",
                       f"port {port.port}/{port.protocol} is already named {seen[key]!r}",
                       "list each port once per service")
                continue
            seen[key] = port.name
            out.append(port)
        return tuple(out)

    def _port(self, item: Section | Located, name: str, path: str) -> Port | None:
        if isinstance(item, Located):  # short form: `http: 80`
            if isinstance(item.value, int) and not isinstance(item.value, bool) and 1 <= item.value <= 65535:
                return Port(name, item.value)
            self.sec.fail(item, path, f"should be a port 1-65535 or {{port, protocol}}, not {item.value!r}")
            return None
        number = item.integer("port", required=True, lo=1, hi=65535)
        proto = item.text("protocol", "tcp", choices=PROTOCOLS) or "tcp"
        publish = item.flag("publish", False)
        item.done(["port", "protocol", "publish"])
        return Port(name, number, proto, publish) if item.ok and number else None

    def _health(self, h: Section | None, ports: set[str]) -> HealthCheck | None:
        if h is None:
            return None
        command = self._argv(h, "command")
        http, tcp = h.section("http"), h.section("tcp")
        path, expect, port = None, 200, None
        if http is not None:
            path = http.text("path", "/", pattern=HTTP_PATH, hint="a URL path like /health")
            expect = http.integer("expect", 200, lo=100, hi=599) or 200
            port = self._port_ref(http, ports)
            http.done(["path", "port", "expect"])
        if tcp is not None:
            port = self._port_ref(tcp, ports)
            tcp.done(["port"])
        forms = [f for f, on in (("command", bool(command)), ("http", http is not None), ("tcp", tcp is not None)) if on]
        if len(forms) != 1:
            h.fail(h.node, h.path, f"give exactly one of command, http or tcp (found {', '.join(forms) or 'none'})")
        interval = h.integer("interval", 30, lo=1, hi=3600) or 30
        timeout = h.integer("timeout", 5, lo=1, hi=600) or 5
        retries = h.integer("retries", 3, lo=1, hi=100) or 3
        start = h.integer("start_period", 0, lo=0, hi=3600) or 0
        h.done(["command", "http", "tcp", "interval", "timeout", "retries", "start_period"])
        if not h.ok or not all(x.ok for x in (http, tcp) if x is not None):
            self.sec.ok = False
            return None
        return HealthCheck(command, path, expect, port, interval, timeout, retries, start)

    def _port_ref(self, s: Section, ports: set[str]) -> str | None:
        ref = s.text("port", required=True, pattern=KEY, hint="the name of one of the service's ports")
        if ref is not None and ref not in ports:
            s.fail(s.raw("port"), s.sub("port"), f"the service has no port {ref!r}",
                   suggest(ref, sorted(ports)) if ports else "declare it under the service's ports:")
            return None
        return ref

    # -- whole-recipe checks ------------------------------------------------------------------

    def _check_kind(self, kind: str, package: str | None, images: dict[str, ImageRef], services: dict[str, ServiceSpec]) -> None:
        sec = self.sec
        if not services and not sec.has("services"):
            sec.fail(sec.node, "services", "is required", "at least one service")
        if kind == "compose":
            if package is not None:
                sec.fail(sec.raw("package"), "package", "only a service-kind recipe installs a package",
                         "set kind: service, or drop package", key=True)
            return
        if package is None and not sec.has("package"):
            sec.fail(sec.node, "package", "is required for kind: service", "the Debian package, like 'syncthing'")
        if sec.has("images"):
            sec.fail(sec.raw("images"), "images", "a service-kind recipe has no images", "drop images", key=True)
        if len(services) > 1:
            sec.fail(sec.raw("services"), "services", "a service-kind recipe runs exactly one unit", key=True)
        for name, svc in services.items():
            if not svc.command:
                sec.fail(sec.raw("services"), f"services.{name}.command", "is required for kind: service",
                         "the program and its arguments, like [\"/usr/bin/syncthing\", \"serve\"]", key=True)

    def _check_depends(self, services: dict[str, ServiceSpec]) -> None:
        for name, svc in services.items():
            node, path = self.depends_at.get(name, (None, ""))
            for i, dep in enumerate(svc.depends_on):
                if dep not in services or dep == name:
                    at = node.value[i] if node is not None and isinstance(node.value, list) else node
                    self.sec.fail(at, f"{path}[{i}]", f"no other service {dep!r} in this recipe",
                                  suggest(dep, [n for n in services if n != name]))

    def _check_images_used(self, images: dict[str, ImageRef]) -> None:
        node = self.sec.raw("images")
        for key in images:
            if key not in self.images_used and node is not None and isinstance(node.value, dict):
                self.sec.fail(node.value[key], f"images.{key}", "no service uses this image",
                              "drop it, or name it in a service's image:", key=True)

    def _check_volumes(self, services: dict[str, ServiceSpec]) -> dict[str, Volume]:
        """A volume name used by two services is one shared directory: kind and source must agree."""
        out: dict[str, Volume] = {}
        for svc in services.values():
            for v in svc.volumes:
                first = out.setdefault(v.name, v)
                if (first.kind, first.source) != (v.kind, v.source):
                    self.sec.fail(self.sec.raw("services"), f"services.{svc.name}.volumes.{v.name}",
                                  "shares a name with another service's volume but not its kind/source",
                                  "one name is one directory: give both the same kind and source", key=True)
        return out

    def _http(self, h: Section | None, services: dict[str, ServiceSpec]) -> HttpSpec | None:
        if h is None:
            return None
        declared = self._declared(self.sec, "services")
        only = declared[0] if len(declared) == 1 else None
        service = h.text("service", only, required=only is None, pattern=KEY, hint="one of the recipe's services")
        svc = services.get(service or "")
        if service is not None and service not in declared:
            h.fail(h.raw("service"), h.sub("service"), f"no service {service!r}", suggest(service, list(services)))
        port = self._port_ref(h, {p.name for p in svc.ports}) if svc is not None else h.text("port")
        health = h.text("health_path", "/", pattern=HTTP_PATH, hint="a URL path like /health") or "/"
        expect = h.integer("expect_status", 200, lo=100, hi=599) or 200
        h.done(["service", "port", "health_path", "expect_status"])
        if not h.ok or service is None or port is None:
            self.sec.ok = False
            return None
        return HttpSpec(service, port, health, expect)

    def _backup(self, b: Section | None, services: dict[str, ServiceSpec], volumes: dict[str, Volume]) -> BackupSpec:
        default = tuple(n for n, v in volumes.items() if v.kind != "cache" and v.source is None)
        if b is None:
            return BackupSpec(default)
        names = b.str_list("volumes", pattern=KEY, default=default)
        node = b.raw("volumes")
        for i, name in enumerate(names if b.has("volumes") else ()):
            at = node.value[i] if node is not None and isinstance(node.value, list) else node
            if name not in volumes:
                b.fail(at, f"backup.volumes[{i}]", f"no volume {name!r} in any service",
                       suggest(name, list(volumes)) if volumes else "declare it under a service's volumes:")
            elif volumes[name].kind == "cache" or volumes[name].source is not None:
                b.fail(at, f"backup.volumes[{i}]", f"{name!r} is not homelab's to back up",
                       "caches and directories with a source (yours) are never backed up")
        dump = self._dump(b.section("dump"), services)
        b.done(["volumes", "dump"])
        if not b.ok:
            self.sec.ok = False
        return BackupSpec(names, dump)

    def _dump(self, d: Section | None, services: dict[str, ServiceSpec]) -> DumpSpec | None:
        if d is None:
            return None
        declared = self._declared(self.sec, "services")
        only = declared[0] if len(declared) == 1 else None
        service = d.text("service", only, required=only is None, pattern=KEY, hint="the service that runs the database")
        if service is not None and service not in declared:
            d.fail(d.raw("service"), d.sub("service"), f"no service {service!r}", suggest(service, list(services)))
        argvs = {key: self._argv(d, key) for key in ("command", "restore", "verify")}
        for key, argv in argvs.items():
            if not argv and not d.has(key):
                d.fail(d.node, d.sub(key), "is required", "a list of arguments")
        ready = self._argv(d, "ready")
        filename = d.text("filename", required=True, pattern=FILENAME, hint="a plain file name like postgres.sql")
        d.done(["service", "command", "restore", "verify", "filename", "ready"])
        if not d.ok or service is None or filename is None:
            d.ok = False
            return None
        return DumpSpec(service, argvs["command"], argvs["restore"], argvs["verify"], filename, ready)

    # -- interpolation ------------------------------------------------------------------------

    def _check_template(self, node: Located, path: str) -> None:
        text = node.value if isinstance(node.value, str) else ""
        for m in REF.finditer(text):
            if m.group(0) == "$$":
                continue
            at = self._at(node, m.start())
            if m.group(0) == "$":
                self.sec.fail(at, path, "a lone '$'", "write $$ for a literal dollar, or ${var.NAME} for a value")
                continue
            problem = self._ref_problem(m.group(1), at)
            if problem is not None:
                self.sec.fail(at, path, *problem)

    def _at(self, node: Located, offset: int) -> Located:
        """The position of a reference at `offset` in a one-line value (a quoted value starts at
        its quote; escapes and block scalars make it approximate, still on the right line)."""
        line = self.lines[node.line - 1] if 0 < node.line <= len(self.lines) else ""
        quoted = 1 if line[node.col - 1:node.col] in ("'", '"') else 0
        return Located(None, node.line, node.col + quoted + offset)

    def _ref_problem(self, ref: str, at: Located) -> tuple[str, str] | None:
        parts = ref.split(".")
        scope = parts[0]
        if scope not in SCOPES:
            close = suggest(scope, list(SCOPES))
            return f"unknown reference ${{{ref}}}", close if close.startswith("did") else \
                "use ${var.NAME}, ${secret.NAME}, ${app.name|data|host} or ${dep.ALIAS.KEY}"
        if scope == "dep":
            if len(parts) != 3 or not all(parts[1:]):
                return f"${{{ref}}} should be ${{dep.ALIAS.KEY}}", "ALIAS from requires:, KEY from its provides:"
            if parts[1] not in self.aliases:
                return (f"no requirement {parts[1]!r} for ${{{ref}}}",
                        suggest(parts[1], list(self.aliases)) if self.aliases else "declare it under requires:")
            self.aliases[parts[1]].append((parts[2], at.line, at.col))
            return None
        if len(parts) != 2 or not parts[1]:
            return f"${{{ref}}} should be ${{{scope}.NAME}}", ""
        names = {"var": list(self.vars), "secret": list(self.secrets), "app": list(APP_KEYS)}[scope]
        if parts[1] in names:
            return None
        what = {"var": "variable", "secret": "secret", "app": "app value"}[scope]
        where = {"var": "variables:", "secret": "secrets:", "app": ""}[scope]
        return (f"no {what} {parts[1]!r} for ${{{ref}}}",
                suggest(parts[1], names) if names else f"declare it under {where}")
