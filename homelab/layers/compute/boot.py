"""Layer 3: cloud servers homelab made that are still coming up when a run starts.

An apply can start while a server an earlier apply created is still booting (that create hit
its deadline, or the run was stopped before it recorded the server). Such a server is not a
host yet: connecting would fail or, with no address, nothing would be planned for it at all.
Instead the plan carries a wait for it (and its whole base, as for a create), and the apply
waits, bounded, with a progress line every few seconds, then goes on with that host in the
same run; past the deadline that host fails with a one-line error saying what to do.

Hetzner's server statuses, as hcloud-python names them (`Server.STATUS_*`): initializing,
starting, running, stopping, off, deleting, migrating, rebuilding, unknown. Coming up:
initializing and starting (a create or power-on in progress), migrating (moved to another
host, it comes back running), and running without a public IPv4 yet. Up: running, with an
address, answering SSH with the host key homelab pinned. Anything else will not come up by
waiting: off and stopping (powered off: someone must power it on), deleting, rebuilding (its
disk is reinstalled, so the pinned host key will not match), unknown.

`boot_verdict` and `plan_waits` are pure; `wait_until_up` does the I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Generator, Sequence

from homelab.config.hetzner import HetznerConfig
from homelab.errors import HomelabError
from homelab.events import Event, Progress
from homelab.model import Change, Op

LAYER = "compute"

READY, WAIT, FAIL = "ready", "wait", "fail"

# what a look at the server's SSH port found
SSH_UNCHECKED = "unchecked"  # not looked at (no address yet, or the caller trusts state)
SSH_SILENT = "silent"  # no SSH answer yet
SSH_PINNED = "pinned"  # answers with the host key homelab pinned
SSH_OTHER = "other key"  # answers, with another host key (so far)

COMING_UP = {"initializing": "server initializing", "starting": "server starting",
             "migrating": "server migrating to another Hetzner host"}
CONSOLE = "check the server in the Hetzner Cloud Console"
WONT_COME_UP = {
    "off": ("is powered off", "power it on in the Hetzner Cloud Console, then run apply again"),
    "stopping": ("is powering off", "power it on in the Hetzner Cloud Console, then run apply again"),
    "deleting": ("is being deleted", "run plan again once it is gone: apply creates it anew"),
    "rebuilding": ("is being rebuilt (its disk reinstalled outside homelab)",
                   "when it is done, `homelab forget-host CONFIG NAME` (its host key changed), then apply again"),
}
PROGRESS_EVERY = 10.0  # seconds between progress lines while the reason stays the same
POLL = 2.0  # seconds between looks (well inside Hetzner's 3600 requests an hour)


@dataclass(frozen=True)
class BootLook:
    """One look at a server: its API status and address, and what its SSH port said."""

    status: str
    ipv4: str | None
    ssh: str = SSH_UNCHECKED


@dataclass(frozen=True)
class Verdict:
    kind: str  # READY | WAIT | FAIL
    reason: str  # WAIT: "server initializing"; FAIL: the one-line error
    hint: str = ""  # FAIL: what to do next
    waited: float = 0.0  # WAIT: seconds waited in this phase, of `limit`
    limit: float = 0.0

    def progress(self, name: str) -> str:
        return f"{name}: {self.reason}, waiting ({self.waited:.0f} s of {self.limit:.0f} s)"


def boot_verdict(name: str, look: BootLook, waited: float, ssh_waited: float, cfg: HetznerConfig) -> Verdict:
    """Pure. Is server `name` up, worth waiting for, or failed? `waited`: seconds since the wait
    began (bounded by action_timeout while the API says it is coming up); `ssh_waited`: since it
    was first seen running with an address (bounded by ssh_timeout)."""
    status = look.status
    if status in WONT_COME_UP:
        what, hint = WONT_COME_UP[status]
        return Verdict(FAIL, f"server {name} {what}: homelab does not wait for it", hint)
    coming = COMING_UP.get(status) or ("server running, no public IPv4 yet" if status == "running"
                                       and not look.ipv4 else "")
    if coming:
        if waited >= cfg.action_timeout:
            return Verdict(FAIL, f"server {name} is still {coming.removeprefix('server ')} after "
                                 f"{cfg.action_timeout} s",
                           f"run apply again in a while; if it stays like this, {CONSOLE} "
                           "(compute.hetzner.action_timeout sets the limit)")
        return Verdict(WAIT, coming, waited=waited, limit=cfg.action_timeout)
    if status != "running":
        return Verdict(FAIL, f"server {name} has status {status or 'unknown'}: homelab does not wait for it",
                       f"{CONSOLE}, then run apply again")
    if look.ssh in (SSH_PINNED, SSH_UNCHECKED):
        return Verdict(READY, f"server running at {look.ipv4}")
    if ssh_waited >= cfg.ssh_timeout:
        if look.ssh == SSH_OTHER:
            return Verdict(FAIL, f"server {name} answers SSH with a host key other than the one homelab sent it",
                           "cloud-init did not install the pre-seeded key: check the image supports cloud-init; "
                           "homelab will not connect to it")
        return Verdict(FAIL, f"server {name} did not answer SSH at {look.ipv4} within {cfg.ssh_timeout} s",
                       f"run apply again in a while; if it stays like this, {CONSOLE} "
                       "(compute.hetzner.ssh_timeout sets the limit)")
    why = "SSH not answering yet" if look.ssh == SSH_SILENT else "SSH offers another host key so far"
    return Verdict(WAIT, f"server running at {look.ipv4}, {why}", waited=ssh_waited, limit=cfg.ssh_timeout)


@dataclass(frozen=True)
class Waits:
    changes: tuple[Change, ...] = ()  # one wait per server still coming up
    names: tuple[str, ...] = ()  # their base is planned in the same plan, as for a create
    failed: tuple[str, ...] = ()  # "web-3: server web-3 is powered off: ..." (not waited for)


def plan_waits(cfg: HetznerConfig, listed: Sequence[Any], hosts: Collection[str],
               failed: Collection[str]) -> Waits:
    """Pure. Servers of the config the API lists that are not hosts of this run (not connected:
    an earlier apply made them and did not see them up) -> a wait each, or why not."""
    by_name = {s.name: s for s in listed}
    changes: list[Change] = []
    names: list[str] = []
    fails: list[str] = []
    for want in cfg.servers:
        have = by_name.get(want.name)
        if have is None or want.name in hosts or want.name in failed:
            continue
        v = boot_verdict(want.name, BootLook(have.status, have.ipv4), 0.0, 0.0, cfg)
        if v.kind == FAIL:
            fails.append(f"{want.name}: {v.reason} ({v.hint})")
            continue
        now = v.reason if v.kind == WAIT else "server running, not connected yet"
        # what it does now is a detail, not the summary: the summary is part of the change's key,
        # and a plan reviewed while it was initializing must still match once it is starting
        changes.append(Change(LAYER, f"server {want.name}", "wait",
                              f"wait until it is up and answers SSH (up to {cfg.action_timeout} s, "
                              f"then {cfg.ssh_timeout} s for SSH)", detail=(f"now: {now}",),
                              ops=(Op("hetzner.wait_server", {"name": want.name, "id": have.id}),)))
        names.append(want.name)
    return Waits(tuple(changes), tuple(names), tuple(fails))


def start_failures(cfg: HetznerConfig, listed: Sequence[Any], known: Collection[str],
                   compute_runs: bool = True) -> dict[str, str]:
    """Pure. At the start of a run, of the servers of the config state does not record yet:
    those that will not come up by waiting (powered off, being deleted ...) -> why their host
    fails. Without compute in the run (`--layer mesh`) nobody waits for them: all fail, saying so."""
    out: dict[str, str] = {}
    for have in listed:
        if cfg.server(have.name) is None or have.name in known:
            continue
        v = boot_verdict(have.name, BootLook(have.status, have.ipv4), 0.0, 0.0, cfg)
        if v.kind == FAIL:
            out[have.name] = f"{v.reason} ({v.hint})"
        elif not compute_runs:
            now = v.reason if v.kind == WAIT else "server running, not connected yet"
            out[have.name] = (f"server {have.name} is not up for homelab yet ({now}): only the compute layer waits "
                              "for it (apply without --layer, or with --layer compute)")
    return out


def ssh_look(offered: str | None, pinned: str | None) -> str:
    """Pure: what the key a server's SSH offered (None: no answer) says against the pinned one."""
    if offered is None:
        return SSH_SILENT
    if pinned is None or offered.split()[:2] == pinned.split()[:2]:
        return SSH_PINNED
    return SSH_OTHER


# --------------------------------------------------------------------------- I/O --
def wait_until_up(api: Any, cfg: HetznerConfig, server: Any, pinned: str | None,
                  cancelled: Callable[[], bool] = lambda: False,
                  offered: Callable[[str, int, str], str | None] | None = None,
                  ) -> Generator[Event, None, Any]:
    """Poll `server` (a CloudServer) through `api` until it runs, has an address and answers
    SSH with `pinned`; yields Progress while waiting, returns the server as last read, raises
    HomelabError (the verdict's reason and hint) when it fails or its deadline passes."""
    from homelab.providers.ssh_wait import offered_host_key

    look_ssh = offered or (lambda address, port, key_type: offered_host_key(address, port, key_type))
    key_type = pinned.split()[0] if pinned else "ssh-ed25519"
    clock = api.clock
    start = clock.monotonic()
    ssh_since: float | None = None
    shown: tuple[float, str] | None = None  # when the last progress line was, and its reason
    while True:
        now = clock.monotonic()
        ssh = SSH_UNCHECKED
        if server.status == "running" and server.ipv4:
            ssh_since = now if ssh_since is None else ssh_since
            ssh = ssh_look(look_ssh(server.ipv4, 22, key_type), pinned)
        else:
            ssh_since = None  # back to booting: the SSH phase starts again when it runs
        v = boot_verdict(server.name, BootLook(server.status, server.ipv4, ssh), now - start,
                         0.0 if ssh_since is None else now - ssh_since, cfg)
        if v.kind == READY:
            return server
        if v.kind == FAIL:
            raise HomelabError(v.reason, v.hint)
        if cancelled():
            raise HomelabError(f"waiting for server {server.name}: cancelled ({v.reason})",
                               "run apply again to go on")
        if shown is None or now - shown[0] >= PROGRESS_EVERY or v.reason != shown[1]:
            shown = (now, v.reason)  # a line every PROGRESS_EVERY s, and whenever the reason changes
            yield Progress(LAYER, v.progress(server.name))
        clock.sleep(POLL)
        server = api.get_server(server.id, server.name)

