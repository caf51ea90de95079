"""Every file storage puts on a host, with mode and owner: what the layer's ops will write. Pure.

Client side (the host whose app is backed up): the shared lib, per (app, repository) the
backup, drill and check scripts with their services and timers, the repository password
(0600) and credentials (0600). Server side (the machine running rest-server): its defaults
file, drop-in, htpasswd (root:restic-rest-server 0640, as the package ships it), the prune
script, service and timer, and the repository password readable by the prune's user
(0640 root:restic-rest-server): retention has to open the repositories, so that machine holds
the password too; what it cannot do is be told by a client to delete.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from homelab.config.storage import Repository, Schedule
from homelab.layers.storage import restserver, scripts, units
from homelab.layers.storage.repo import ETC, LIB, STATUS_DIR, Target
from homelab.secrets import Secret


@dataclass(frozen=True)
class HostFile:
    path: str
    content: str | Secret  # a Secret for passwords and credentials: revealed only by the worker
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"

    @property
    def secret(self) -> bool:
        return isinstance(self.content, Secret)


@dataclass(frozen=True)
class HostDir:
    path: str
    mode: str = "0755"
    owner: str = "root"
    group: str = "root"


CLIENT_DIRS = (HostDir(ETC, "0700"), HostDir(LIB), HostDir(STATUS_DIR), HostDir("/var/cache/homelab/restic", "0700"))


def client_files(target: Target, app: scripts.AppBackup, schedule: Schedule, *, password: Secret,
                 credentials: Secret | None, check_subset: str,
                 open_timeout: int = scripts.DEFAULT_OPEN_TIMEOUT) -> list[HostFile]:
    """Files for one app backed up to one repository, on the app's host (shared lib included)."""
    out = [HostFile(scripts.LIB_SH, scripts.render_lib()),
           HostFile(target.password_file, Secret(password.reveal() + "\n"), "0600")]
    if target.env_file and credentials is not None:
        out.append(HostFile(target.env_file, credentials, "0600"))
    jobs = {
        "backup": (scripts.render_backup(target, app, open_timeout=open_timeout), schedule.backup,
                   f"homelab backup of {app.app} to {target.repo.name}"),
        "drill": (scripts.render_drill(target, app, open_timeout=open_timeout), schedule.drill,
                  f"homelab restore drill of {app.app} from {target.repo.name}"),
        "check": (scripts.render_check(target, check_subset, open_timeout=open_timeout), schedule.check,
                  f"homelab check of {app.app}'s repository in {target.repo.name}"),
    }
    for kind, (script, calendar, description) in jobs.items():
        job = units.Job(target.unit(kind), description, target.script(kind), calendar, schedule.randomized_delay)
        out += [HostFile(target.script(kind), script, "0755"),
                HostFile(f"{units.UNIT_DIR}/{job.name}.service", units.render_service(job)),
                HostFile(f"{units.UNIT_DIR}/{job.name}.timer", units.render_timer(job))]
    return out


def server_files(repo: Repository, address: str, htpasswd: Mapping[str, str], schedule: Schedule, *,
                 password: Secret, keep: tuple[int, int, int], after: tuple[str, ...] = ()) -> list[HostFile]:
    """Files for a rest repository on the machine that runs rest-server."""
    assert repo.type == "rest" and repo.port is not None and repo.path is not None
    grp = restserver.USER
    pw = f"{ETC}/{repo.name}.server-password"
    name = f"homelab-prune-{repo.name}"
    job = units.Job(name, f"homelab retention (forget --prune) of repository {repo.name}", f"{LIB}/prune-{repo.name}",
                    schedule.prune, schedule.randomized_delay, user=grp, after=())
    daily, weekly, monthly = keep
    return [
        HostFile(restserver.DEFAULTS_FILE, restserver.render_defaults(address, repo.port, repo.path)),
        HostFile(restserver.DROPIN, restserver.render_dropin(after)),
        HostFile(restserver.HTPASSWD, restserver.render_htpasswd(htpasswd), "0640", "root", grp),
        HostFile(pw, Secret(password.reveal() + "\n"), "0640", "root", grp),
        HostFile(scripts.LIB_SH, scripts.render_lib()),
        HostFile(f"{LIB}/prune-{repo.name}", scripts.render_prune(repo.name, repo.path, pw, daily=daily,
                                                                  weekly=weekly, monthly=monthly), "0755"),
        HostFile(f"{units.UNIT_DIR}/{name}.service", units.render_service(job)),
        HostFile(f"{units.UNIT_DIR}/{name}.timer", units.render_timer(job)),
    ]


def server_dirs(repo: Repository) -> tuple[HostDir, ...]:
    grp = restserver.USER
    # ETC is 0710 here: the prune's user must reach its password file, nothing else in it
    return (HostDir(ETC, "0710", "root", grp), HostDir(LIB), HostDir(STATUS_DIR),
            HostDir(scripts.SERVER_STATUS_DIR, "0750", grp, grp), HostDir(repo.path or "", "0750", grp, grp))
