"""The controller's half of a guarded change: prove a NEW login works, then keep the change.

Runs inside the pyinfra worker (operation `homelab.confirm_login`, right after the guard armed
the change on the host), on the controller. It opens a brand-new SSH connection with the
host key pinned in state — the worker's own session would survive almost any mistake, a new
one does not — and runs `homelab-guard confirm` through it. If no new login succeeds before
the window closes, it does not confirm: the host puts the previous config back by itself.
We then wait for that, check that the host answers SSH again, and fail with a message that
says what happened.

The machine homelab runs on (`address: local`) is not reached over SSH, so the "new login"
there is a new local shell: the change is kept only if homelab is still alive to confirm it
(a crash or a hang mid-change reverts it); whether the operator can still SSH in from outside
is theirs to check, as on any console.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.local import LocalSession
from homelab.provision.guard import GUARD_PATH, arm_command
from homelab.ssh import Connection
from homelab.transport import Session

WHAT = {"sshd": "sshd change", "nft": "firewall change"}
RETRY_EVERY = 2.0  # seconds between login attempts
CONNECT_TIMEOUT = 5.0
MARGIN = 5  # seconds before the host's timer fires by which we stop trying (confirm must land first)


@dataclass(frozen=True)
class ConfirmSpec:
    """How to log in afresh: no secret in here (a key *path*, a public host key)."""

    host: str
    address: str
    port: int
    users: tuple[str, ...]  # a new login as any of these confirms (tried in order)
    fallback: tuple[str, ...]  # after a revert: who may answer (with the previous config)
    fallback_port: int  # after a revert: where (sshd may be back on its previous port)
    key_path: str | None
    use_agent: bool
    host_key: str
    kind: str
    token: str
    window: int

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ConfirmSpec:
        return cls(host=str(spec["host"]), address=str(spec["address"]), port=int(spec["port"]),
                   users=tuple(spec["users"]), fallback=tuple(spec.get("fallback") or spec["users"]),
                   fallback_port=int(spec.get("fallback_port") or spec["port"]), key_path=spec.get("key_path"),
                   use_agent=bool(spec.get("use_agent")), host_key=str(spec["host_key"]), kind=str(spec["kind"]),
                   token=str(spec["token"]), window=int(spec["window"]))

    def target(self, user: str, port: int | None = None) -> HostTarget:
        return HostTarget(self.host, self.address, port or self.port, user, self.key_path)


Opener = Callable[[HostTarget, str, bool, float], Session]


def open_fresh(target: HostTarget, host_key: str, use_agent: bool, timeout: float) -> Session:
    if target.local:
        return LocalSession(target)
    conn, _ = Connection.open(target, host_key, None, use_agent, timeout=timeout)
    return conn


def arm_and_confirm(spec: Mapping[str, Any], run_on_host: Callable[[str], tuple[bool, str]],
                    opener: Opener | None = None) -> list[str]:
    """Arm the staged change through the running session, then confirm it through a new one.

    Returns lines worth showing; raises HomelabError when the change is not (or no longer) live.
    """
    s = ConfirmSpec.from_json(spec)
    what = WHAT.get(s.kind, s.kind)
    ok, output = run_on_host(arm_command(s.kind, s.token, s.window))
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not ok:
        raise HomelabError(f"{s.host}: {what} not applied: {' / '.join(lines[-3:]) or 'homelab-guard failed'}",
                           "nothing was changed on the host; fix the config and apply again")
    return [*lines, confirm_new_login(spec, opener or open_fresh)]


def confirm_new_login(spec: Mapping[str, Any], opener: Opener = open_fresh,
                      clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """Confirm the armed change through a new login; raise HomelabError if that is impossible."""
    s = ConfirmSpec.from_json(spec)
    what = WHAT.get(s.kind, s.kind)
    started = clock()
    deadline = started + max(1, s.window - MARGIN)
    last_error = "no attempt"
    while True:
        for user in s.users:
            try:
                conn = opener(s.target(user), s.host_key, s.use_agent, CONNECT_TIMEOUT)
            except HomelabError as exc:
                last_error = exc.message
                continue
            try:
                res = conn.run_script(f"exec {GUARD_PATH} confirm {s.kind} {s.token}\n", timeout=60)
            finally:
                conn.close()
            if res.rc == 0:
                return f"{s.host}: {what} confirmed by a new login as {user}"
            detail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [f"exit {res.rc}"]
            if res.rc == 3:
                raise HomelabError(f"{s.host}: {what} was undone before the confirmation arrived ({detail[0]})",
                                   f"raise permissions.revert_after (now {s.window} s) and apply again")
            raise HomelabError(f"{s.host}: confirming the {what} failed: {detail[0]}",
                               "see the run log; the host undoes the change by itself")
        if clock() >= deadline:
            break
        sleep(RETRY_EVERY)
    raise HomelabError(f"{s.host}: {what} rolled back: no new SSH login as {' or '.join(s.users)} worked within "
                       f"{s.window} s ({last_error}); {_after_revert(s, started, opener, clock, sleep)}",
                       "the new config would have locked homelab out; check permissions (users, sshd.port, "
                       "firewall) and compute's address/port for this host")


def _after_revert(s: ConfirmSpec, started: float, opener: Opener, clock: Callable[[], float],
                  sleep: Callable[[float], None]) -> str:
    """Wait for the host's timer, then say whether the host answers SSH again."""
    wait = started + s.window + 3 - clock()
    if wait > 0:
        sleep(wait)
    until = clock() + 30
    while True:
        for user, port in [(u, p) for p in dict.fromkeys([s.port, s.fallback_port])
                           for u in dict.fromkeys(s.users + s.fallback)]:
            try:
                conn = opener(s.target(user, port), s.host_key, s.use_agent, CONNECT_TIMEOUT)
            except HomelabError:
                continue
            try:
                res = conn.run_script(f"exec {GUARD_PATH} status {s.kind}\n", timeout=30)
            finally:
                conn.close()
            state = res.stdout.strip()
            if state == f"reverted {s.token}":
                return f"the host restored the previous config and answers SSH again (as {user})"
            return f"the host answers SSH again (as {user}); guard state: {state or 'unknown'}"
        if clock() >= until:
            return "the host does NOT answer SSH yet: check it on its console"
        sleep(RETRY_EVERY)
