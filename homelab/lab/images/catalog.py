"""The lab's container images: one table, so recipes, the lab and its tests agree on tags.

Docker Hub and ghcr.io cannot be reached from here, so every image a recipe names is rebuilt
on the outer machine from Debian (and PyPI) packages — a **lab build of <upstream image>** —
keeping the upstream image's interface: entrypoint and command, environment, ports, data
paths and user id. The Anubis image is different: Anubis is in no reachable registry at all,
so the lab serves a **stand-in** under Anubis's real name (see files/anubis_standin.py).

Each image is pushed to the lab registry under its upstream path (see refs.py):
`docker.io/syncthing/syncthing:1.29.5` -> `labrepo:5000/syncthing/syncthing:1.29.5`,
`ghcr.io/miniflux/miniflux:2.2.6` -> `labrepo:5000/ghcr.io/miniflux/miniflux:2.2.6`.

A tag is the upstream tag of the same version as the Debian/PyPI package it is built from;
the build checks that the package version still matches (Debian point releases move it) and
fails with a hint to update this table rather than serve a mislabelled image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Every image is built from this suite's packages, whatever suite the hosts run.
IMAGE_SUITE = "trixie"


@dataclass(frozen=True)
class User:
    """A user (and its group of the same name and id) created before any package is installed,
    so files get the upstream image's ids (Debian's postinst would pick dynamic ones)."""

    name: str
    uid: int
    home: str = "/nonexistent"


@dataclass(frozen=True)
class ImageSpec:
    """One lab image: what it stands for, how it is built, and its upstream interface."""

    key: str  # short name used in code and tests
    upstream: str  # the upstream repository, e.g. "docker.io/library/postgres"
    tag: str  # the pinned upstream tag recipes use
    aliases: tuple[str, ...]  # more tags pushed for the same manifest (e.g. the major)
    also_as: tuple[str, ...] = field(default=(), kw_only=True)  # other repositories upstream publishes it to
    kind: str  # "lab build" (real app, rebuilt here) | "stand-in" (our own code, same contract)
    source: str  # where the software comes from, for people
    apt: tuple[str, ...] = ()  # Debian packages (--no-install-recommends)
    # Debian package whose version must start with `version` (guards against a silent bump)
    version_package: str = ""
    version: str = ""
    pip: tuple[str, ...] = ()  # PyPI requirements, installed into `pip_venv`
    pip_venv: str = "/venv"
    users: tuple[User, ...] = ()
    pre: tuple[str, ...] = ()  # shell commands run in the image root before apt (e.g. debconf-like settings)
    files: tuple[tuple[str, str, int], ...] = ()  # (files/ name, path in image, mode)
    setup: tuple[str, ...] = ()  # shell commands run in the image root after installing
    # ---- the upstream image's interface (OCI image config) ----
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[str, ...] = ()  # "8384/tcp"
    volumes: tuple[str, ...] = ()
    user: str = ""  # "" = root, like the upstream image
    workdir: str = ""
    stopsignal: str = ""
    healthcheck: tuple[str, ...] = ()  # ("CMD-SHELL", "...") only where upstream has one
    health: str = ""  # how a test or monitor checks it, for people
    notes: tuple[str, ...] = field(default=())  # where it differs from upstream

    @property
    def ref(self) -> str:
        return f"{self.upstream}:{self.tag}"

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.tag, *self.aliases)


SYNCTHING = ImageSpec(
    key="syncthing", upstream="docker.io/syncthing/syncthing", tag="1.29.5", aliases=("1.29",),
    kind="lab build", source="Debian trixie `syncthing` 1.29.5~ds1",
    apt=("syncthing", "ca-certificates", "netcat-openbsd"), version_package="syncthing", version="1.29.5",
    # merged /usr: /bin/entrypoint.sh and /bin/syncthing (upstream's paths) are these
    files=(("syncthing-entrypoint.sh", "/usr/bin/entrypoint.sh", 0o755),),
    setup=("mkdir -p /var/syncthing",),
    entrypoint=("/bin/entrypoint.sh", "/bin/syncthing", "-home", "/var/syncthing/config"),
    env=(("PUID", "1000"), ("PGID", "1000"), ("HOME", "/var/syncthing"), ("STGUIADDRESS", "0.0.0.0:8384")),
    ports=("8384/tcp", "22000/tcp", "22000/udp", "21027/udp"), volumes=("/var/syncthing",),
    healthcheck=("CMD-SHELL", "nc -z 127.0.0.1 8384 || exit 1"),
    health="GET :8384/rest/noauth/health -> {\"status\": \"OK\"}",
    notes=("drops to PUID:PGID with setpriv (upstream: chpst/su-exec); PCAP (setcap) is not supported",),
)

RADICALE = ImageSpec(
    key="radicale", upstream="ghcr.io/kozea/radicale", tag="3.7.8", aliases=(),
    kind="lab build", source="PyPI `radicale==3.7.8` in a venv (/app) on Debian trixie's python3",
    apt=("python3", "python3-venv", "ca-certificates", "curl"), pip=("radicale==3.7.8", "passlib[bcrypt]"),
    pip_venv="/app", users=(User("radicale", 1000, "/var/lib/radicale"),),
    setup=("mkdir -p /var/lib/radicale && chown 1000:1000 /var/lib/radicale /app",),
    entrypoint=("/app/bin/python", "/app/bin/radicale"), cmd=("--hosts", "0.0.0.0:5232,[::]:5232"),
    ports=("5232/tcp",), volumes=("/var/lib/radicale",), user="radicale", workdir="/app",
    health="GET :5232/.web/ -> 200 (curl is in the image, as upstream's)",
    notes=("upstream (Kozea's official image) is python:3-alpine with the venv copied to /app; "
           "here a venv at /app on Debian's python3",),
)

RADICALE_TOMSQUEST = ImageSpec(
    key="radicale-tomsquest", upstream="docker.io/tomsquest/docker-radicale", tag="3.8.1.1", aliases=(),
    kind="lab build", source="PyPI `radicale==3.8.1` in a venv on Debian trixie's python3",
    apt=("python3", "python3-venv", "tini", "ca-certificates"), pip=("radicale==3.8.1", "passlib[bcrypt]"),
    users=(User("radicale", 2999),),
    files=(("radicale-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755),
           ("radicale-config", "/config/config", 0o644)),
    setup=("mkdir -p /data", "chown -R 2999:2999 /config /data", "ln -sf /usr/bin/tini /sbin/tini"),
    entrypoint=("/sbin/tini", "--", "docker-entrypoint.sh"),
    cmd=("/venv/bin/radicale", "--config", "/config/config"),
    env=(("PATH", "/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),),
    ports=("5232/tcp",), volumes=("/config", "/data"),
    health="GET :5232/.web/ -> 200",
    notes=("upstream is Alpine (su-exec); here setpriv on Debian. UID/GID and TAKE_FILE_OWNERSHIP kept",
           "config as upstream's: hosts 0.0.0.0:5232, auth none, collections in /data/collections"),
)

POSTGRES = ImageSpec(
    key="postgres", upstream="docker.io/library/postgres", tag="17.12", aliases=("17",),
    kind="lab build", source="Debian trixie `postgresql-17` 17.12",
    apt=("postgresql-17", "postgresql-client-17", "gosu", "locales", "tzdata"),
    version_package="postgresql-17", version="17.12",
    users=(User("postgres", 999, "/var/lib/postgresql"),),
    # as upstream: the package must not create a "main" cluster; the entrypoint runs initdb
    pre=("mkdir -p /etc/postgresql-common/createcluster.d",
         "echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/homelab-lab.conf"),
    files=(("postgres-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755),),
    setup=(
        # as upstream: the sample config listens everywhere; initdb copies it into PGDATA
        "sed -ri \"s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!\" /usr/share/postgresql/17/postgresql.conf.sample",
        "mkdir -p /docker-entrypoint-initdb.d /var/run/postgresql /var/lib/postgresql/data",
        "chown -R 999:999 /var/run/postgresql /var/lib/postgresql && chmod 3777 /var/run/postgresql",
        "chmod 1777 /var/lib/postgresql/data",
        "localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8",
    ),
    entrypoint=("docker-entrypoint.sh",), cmd=("postgres",),
    env=(("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin"),
         ("PG_MAJOR", "17"), ("LANG", "en_US.utf8"), ("PGDATA", "/var/lib/postgresql/data")),
    ports=("5432/tcp",), volumes=("/var/lib/postgresql/data",), stopsignal="SIGINT",
    health="pg_isready -U $POSTGRES_USER; pg_dump inside the container",
    notes=("docker-entrypoint: POSTGRES_PASSWORD/_USER/_DB (+ _FILE), POSTGRES_INITDB_ARGS, "
           "POSTGRES_HOST_AUTH_METHOD, /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz; "
           "not: POSTGRES_INITDB_WALDIR, *.sql.xz/zst",),
)

VALKEY = ImageSpec(
    key="valkey", upstream="docker.io/valkey/valkey", tag="8.1.1", aliases=("8.1", "8"),
    kind="lab build", source="Debian trixie `valkey-server` 8.1.1+dfsg1",
    apt=("valkey-server", "valkey-tools"), version_package="valkey-server", version="8.1.1",
    users=(User("valkey", 999),),
    files=(("valkey-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755),),
    setup=("mkdir -p /data && chown 999:999 /data",),
    entrypoint=("docker-entrypoint.sh",), cmd=("valkey-server",),
    ports=("6379/tcp",), volumes=("/data",), workdir="/data",
    health="valkey-cli ping -> PONG",
    notes=("upstream builds with protected-mode off by default; the entrypoint passes "
           "--protected-mode no unless the command sets it",),
)

MINIFLUX = ImageSpec(
    key="miniflux", upstream="ghcr.io/miniflux/miniflux", tag="2.2.6", aliases=(),
    kind="lab build", source="Debian trixie `miniflux` 2.2.6",
    apt=("miniflux", "ca-certificates", "tzdata"), version_package="miniflux", version="2.2.6",
    also_as=("docker.io/miniflux/miniflux",),  # upstream publishes the same image to both
    cmd=("/usr/bin/miniflux",), env=(("LISTEN_ADDR", "0.0.0.0:8080"),), ports=("8080/tcp",),
    user="65534",  # upstream: USER nobody
    health="GET :8080/healthcheck -> OK (needs DATABASE_URL; RUN_MIGRATIONS=1, CREATE_ADMIN=1, "
           "ADMIN_USERNAME, ADMIN_PASSWORD as upstream)",
)

ANUBIS = ImageSpec(
    key="anubis", upstream="ghcr.io/techarohq/anubis", tag="v1.27.0", aliases=(),
    kind="stand-in", source="homelab's Anubis stand-in (files/anubis_standin.py) on Debian's python3",
    apt=("python3", "python3-cryptography"),
    files=(("anubis_standin.py", "/usr/local/bin/anubis", 0o755),),
    entrypoint=("/usr/local/bin/anubis",),
    env=(("BIND", ":8923"), ("METRICS_BIND", ":9090"), ("DIFFICULTY", "4"), ("TARGET", "http://localhost:3923")),
    ports=("8923/tcp", "9090/tcp"), user="1000",
    health="GET :9090/healthz -> 200 OK",
    notes=("a STAND-IN: Anubis's HTTP contract for what homelab relies on (challenge page, "
           "proof-of-work pass-challenge, ED25519-signed JWT cookie, proxy with X-Real-Ip, "
           "/healthz, api/check); policy files are not evaluated: every client without a valid "
           "cookie is challenged",),
)

WHOAMI = ImageSpec(
    key="whoami", upstream="docker.io/traefik/whoami", tag="v1.11.0", aliases=(),
    kind="stand-in", source="homelab's whoami stand-in (files/whoami_standin.py) on Debian's python3",
    apt=("python3",),
    files=(("whoami_standin.py", "/whoami", 0o755),),
    entrypoint=("/whoami",), ports=("80/tcp",),
    health="GET :80/health -> 200 (POST a status code to /health to change it)",
    notes=("a STAND-IN: whoami's HTTP contract for what homelab's tests rely on (GET / names the "
           "container's hostname and the request, /api, /health settable by POST, --port, --name); "
           "whoami is only on Docker Hub and Debian does not package it",),
)

CATALOG: dict[str, ImageSpec] = {s.key: s for s in (SYNCTHING, RADICALE, RADICALE_TOMSQUEST, POSTGRES, VALKEY,
                                                    MINIFLUX, ANUBIS, WHOAMI)}


def spec(key: str) -> ImageSpec:
    try:
        return CATALOG[key]
    except KeyError:
        raise KeyError(f"no lab image {key!r}; known: {', '.join(CATALOG)}") from None
