"""Storage monitors, from what the probes read on the hosts. Pure.

- last backup per app and repository: OK while the last run succeeded and is younger than
  1.5x the schedule, WARN past that or when restic exited 3 (a partial snapshot is not a
  success), FAIL past 3x, when the last run failed, or when there never was one;
- last drill and last repository check: FAIL when they failed, aged like backups;
- free space of data dirs and repositories: WARN under 10 %, FAIL under 5 %;
- append-only really enforced: the probe sends a DELETE for a key file that does not exist,
  with the client's own credential; rest-server answers 403 before looking at the file when
  `--append-only` is on (rest-server repo/repo.go deleteBlob) and 404 when it is off, so the
  probe changes nothing either way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homelab.model import Health, Monitor

LAYER = "storage"
WARN_FACTOR = 1.5
FAIL_FACTOR = 3.0
WARN_FREE = 0.10
FAIL_FREE = 0.05


@dataclass(frozen=True)
class RunStatus:
    """One status file written by a storage script."""

    epoch: int
    exit: int
    result: str  # ok | partial | failed
    message: str = ""
    last_ok: int | None = None
    snapshots: tuple[str, ...] = ()
    step: str = ""
    check: str = ""  # the drill's database check: its query's result (e.g. "2 tables, 3 rows")


def parse_status(text: str | None) -> RunStatus | None:
    """None for a missing or unreadable file (never run, or half-written by a crash)."""
    if not text or not text.strip():
        return None
    try:
        doc: dict[str, Any] = json.loads(text)
        return RunStatus(epoch=int(doc["epoch"]), exit=int(doc["exit"]), result=str(doc["result"]),
                         message=str(doc.get("message") or ""),
                         last_ok=int(doc["last_ok"]) if doc.get("last_ok") else None,
                         snapshots=tuple(str(s) for s in doc.get("snapshots") or ()), step=str(doc.get("step") or ""),
                         check=str(doc.get("check") or ""))
    except (ValueError, KeyError, TypeError):
        return None


def human_age(seconds: float) -> str:
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def _aged(subject: str, name: str, status: RunStatus | None, every: int, now: float, what: str,
          never: Health = Health.FAIL, run_now: str = "") -> Monitor:
    """The common rule for scheduled runs: result first, then age against the schedule.
    `never`: a backup that never ran is a FAIL (there is no copy); a drill or check that has
    not come round yet is a WARN (nothing proven yet, nothing broken either)."""
    if status is None:
        return Monitor(LAYER, subject, name, never, f"no {what} has run yet" + (f" (`{run_now}` runs one now)"
                                                                              if run_now else ""))
    age = now - status.epoch
    ago = human_age(age)
    if status.result == "failed":
        since = f"; last success {human_age(now - status.last_ok)} ago" if status.last_ok else "; never succeeded"
        why = f": {status.message}" if status.message else ""
        return Monitor(LAYER, subject, name, Health.FAIL, f"last {what} {ago} ago failed (exit {status.exit}){why}{since}")
    if age > FAIL_FACTOR * every:
        return Monitor(LAYER, subject, name, Health.FAIL, f"last {what} {ago} ago, over 3x its schedule ({human_age(every)})")
    if status.result == "partial":
        return Monitor(LAYER, subject, name, Health.WARN,
                       f"last {what} {ago} ago is partial (exit 3: some files could not be read)")
    if status.result != "ok":
        return Monitor(LAYER, subject, name, Health.FAIL, f"last {what} {ago} ago: unknown result {status.result!r}")
    if age > WARN_FACTOR * every:
        return Monitor(LAYER, subject, name, Health.WARN, f"last {what} {ago} ago, over 1.5x its schedule ({human_age(every)})")
    return Monitor(LAYER, subject, name, Health.OK, f"last {what} {ago} ago: ok")


def backup_monitor(app: str, repo: str, text: str | None, every: int, now: float) -> Monitor:
    m = _aged(f"{app}->{repo}", "backup", parse_status(text), every, now, "backup",
              run_now=f"homelab backup CONFIG run {app}")
    st = parse_status(text)
    if m.health is Health.OK and st is not None and st.snapshots:
        return Monitor(LAYER, m.subject, m.name, m.health, f"{m.reason}, snapshot {', '.join(s[:8] for s in st.snapshots)}")
    return m


def drill_monitor(app: str, repo: str, text: str | None, every: int, now: float) -> Monitor:
    st = parse_status(text)
    m = _aged(f"{app}->{repo}", "drill", st, every, now, "restore drill", never=Health.WARN,
              run_now=f"homelab backup CONFIG drill {app}")
    if m.health is Health.FAIL and st is not None and st.step and st.result == "failed":
        return Monitor(LAYER, m.subject, m.name, m.health, f"{m.reason} (at {st.step})")
    if m.health is not Health.FAIL and st is not None and st.check:
        return Monitor(LAYER, m.subject, m.name, m.health, f"{m.reason}; scratch database: {st.check}")
    return m


def check_monitor(app: str, repo: str, text: str | None, every: int, now: float) -> Monitor:
    return _aged(f"{app}->{repo}", "check", parse_status(text), every, now, "repository check", never=Health.WARN)


@dataclass(frozen=True)
class Space:
    path: str
    size: int  # bytes
    avail: int  # bytes


def parse_df(text: str) -> dict[str, Space]:
    """`df -P -B1 PATH...` -> mount point -> space (the header line is skipped)."""
    out: dict[str, Space] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[3].isdigit():
            mount = " ".join(parts[5:])
            out[mount] = Space(mount, int(parts[1]), int(parts[3]))
    return out


def space_monitor(host: str, label: str, space: Space | None) -> Monitor:
    subject = f"{host}:{label}"
    if space is None:
        return Monitor(LAYER, subject, "free space", Health.UNKNOWN, f"{label}: not found on {host}")
    if space.size <= 0:
        return Monitor(LAYER, subject, "free space", Health.UNKNOWN, f"{label}: size unknown")
    free = space.avail / space.size
    text = f"{free:.0%} free ({space.avail // 2**30} GiB of {space.size // 2**30} GiB) on {space.path}"
    health = Health.FAIL if free < FAIL_FREE else Health.WARN if free < WARN_FREE else Health.OK
    return Monitor(LAYER, subject, "free space", health, text)


def append_only_monitor(host: str, repo: str, http_code: str) -> Monitor:
    """`http_code`: what rest-server answered the probe's DELETE of a non-existent key file."""
    subject = f"{host}->{repo}"
    code = http_code.strip()
    if code == "403":
        return Monitor(LAYER, subject, "append-only", Health.OK, "rest-server refused a delete (403)")
    if code in ("200", "404"):
        return Monitor(LAYER, subject, "append-only", Health.FAIL,
                       f"rest-server accepted a delete request (HTTP {code}): append-only is NOT enforced")
    if code == "401":
        return Monitor(LAYER, subject, "append-only", Health.FAIL, "rest-server refused this host's credential (401)")
    return Monitor(LAYER, subject, "append-only", Health.UNKNOWN,
                   f"rest-server did not answer the check (HTTP {code or 'none'})")


def append_only_probe(target: Any) -> str:
    """Shell for the append-only check, run on the backed-up host: DELETE a key file that does not
    exist, with that host's credential (read from its 0600 env file into curl's config on stdin,
    so it is on no command line). Prints the HTTP status code."""
    import shlex

    url = target.url.removeprefix("rest:").rstrip("/") + "/keys/" + "0" * 64
    return (f"set -a; . {shlex.quote(target.env_file)}; set +a; "
            "printf 'user = \"%s:%s\"\\n' \"$RESTIC_REST_USERNAME\" \"$RESTIC_REST_PASSWORD\" | "
            f"curl -s -o /dev/null -m 10 -w '%{{http_code}}' -X DELETE -K - {shlex.quote(url)}")
