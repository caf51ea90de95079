"""Batched observation: every layer's read-only checks for a host in ONE remote command.

Each layer names probes: a shell snippet, its own timeout, and optionally a parser to a typed
value (`Probe`; a plain string is a probe with the default timeout). The engine joins all of
them into one script, runs it as root in one round trip, and splits the output back per
probe. A no-op apply therefore costs one connection and about one command per host, where a
fact-per-command engine pays ~2 commands per operation. What may hang (restic to a dead
repository) runs under its own `timeout` and ends as "timed out" for its own layer's checks;
the script as a whole has one limit; every probe that finished still reports.

The shared probes below (packages, units, file hashes, docker images and containers, command
JSON) are what layers use instead of writing their own parsers; the batched ones are asked
once per host for every layer that asks them.
"""
from __future__ import annotations

import json
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

PROBE_KEY = re.compile(r"^[a-z0-9_.:-]{1,80}$")
DEFAULT_TIMEOUT = 30.0  # seconds one probe may take (its own, not the host's)
TIMED_OUT = 124  # coreutils `timeout`'s exit code


@dataclass(frozen=True)
class ProbeResult:
    rc: int
    out: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def timed_out(self) -> bool:
        return self.rc == TIMED_OUT

    def lines(self) -> list[str]:
        return [ln for ln in self.out.splitlines() if ln.strip()]


@dataclass(frozen=True)
class Probe:
    """A read-only command, how long it may take, and what its output means."""

    command: str
    timeout: float = DEFAULT_TIMEOUT
    parse: Callable[[ProbeResult], Any] | None = None
    # (kind, items): a question several layers ask of the same host (which packages, which
    # units). The engine asks it once per host for all of them (`batch_groups`), each asker
    # reads its items in the one answer: one dpkg-query and one systemctl per host, not one
    # per layer. A batched probe runs apart from its group, so nothing may rely on its order.
    batch: tuple[str, tuple[str, ...]] | None = None

    @property
    def shares_budget(self) -> bool:
        """A quick local read (it kept the default timeout): it runs as a plain subshell under
        the script's one time limit, not under a `timeout` of its own."""
        return self.timeout == DEFAULT_TIMEOUT

    def value(self, result: ProbeResult | None) -> Any:
        """The parsed value (None when the probe did not run, failed to start or timed out)."""
        if result is None or result.timed_out or self.parse is None:
            return None
        return self.parse(result)


AnyProbe = Union[str, Probe]


def as_probe(p: AnyProbe) -> Probe:
    return p if isinstance(p, Probe) else Probe(p)


def answered(results: Mapping[str, ProbeResult], keys: Sequence[str]) -> list[ProbeResult] | None:
    """The results of `keys`, in order; None when any did not run or timed out (facts read
    from several answers, such as a service's package, unit and file, are known only whole)."""
    got = [results.get(k) for k in keys]
    return None if any(r is None or r.timed_out for r in got) else [r for r in got if r is not None]


def group_budget(group: Mapping[str, AnyProbe], shared: float = DEFAULT_TIMEOUT) -> float:
    """What a group may take: `shared` for all its quick reads, plus the own timeout of each
    probe that has one (they run one after another)."""
    return shared + sum(p.timeout for p in map(as_probe, group.values()) if not p.shares_budget)


def script_budget(groups: Sequence[Mapping[str, AnyProbe]], shared: float = DEFAULT_TIMEOUT) -> float:
    """The one time limit of the host's script: its groups run side by side, so the longest
    group's budget."""
    return max((group_budget(g, shared) for g in groups if g), default=shared)


def script_timeout(groups: Sequence[Mapping[str, AnyProbe]]) -> float:
    """How long the client waits for the script: its budget, plus a margin for the connection
    and the KILL grace."""
    return script_budget(groups) + 15.0


# ------------------------------------------------------------ shared probes --
def packages(names: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """Installed version of each Debian package: {name: version or None}."""
    pkgs = " ".join(shlex.quote(n) for n in names)
    return Probe(f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {pkgs} 2>/dev/null || true",
                 timeout, lambda r: parse_packages(r, names), batch=("packages", tuple(names)))


def parse_packages(result: ProbeResult, names: Sequence[str] = ()) -> dict[str, str | None]:
    found: dict[str, str | None] = {n: None for n in names}
    for line in result.lines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].startswith("ii"):
            found[parts[0].split(":")[0]] = parts[2]
    return found


UNIT_PROPERTIES = ("Id", "LoadState", "UnitFileState", "ActiveState")  # what unit_states asks for


def unit_states(units: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """{unit: (enabled-state, active-state)} from ONE systemctl call (two per unit cost ~10 ms of
    CPU each on a small host, and a no-op asks about a dozen timers). `systemctl show` prints a
    block per unit in argument order, blank-line separated; UnitFileState is what `is-enabled`
    says (for a unit that does not exist: not-found, as is-enabled), ActiveState what
    `is-active` says. The blocks are read here, not by an awk on the host: one process less."""
    names = " ".join(shlex.quote(u) for u in units)
    return Probe(f"systemctl show -p {','.join(UNIT_PROPERTIES)} {names} 2>/dev/null", timeout,
                 parse_unit_states, batch=("units", tuple(units)))


def parse_unit_states(result: ProbeResult) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for block in result.out.split("\n\n"):
        props = dict(line.partition("=")[::2] for line in block.splitlines() if "=" in line)
        if props.get("Id"):
            enabled = props.get("UnitFileState", "")
            if not enabled and props.get("LoadState") == "not-found":
                enabled = "not-found"
            out[props["Id"]] = (enabled, props.get("ActiveState", ""))
    return out


def file_hashes(paths: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """{path: sha256 hex or None (missing)}."""
    files = " ".join(shlex.quote(p) for p in paths)
    cmd = f"for f in {files}; do if [ -f \"$f\" ]; then sha256sum \"$f\"; else echo \"- $f\"; fi; done"
    return Probe(cmd, timeout, parse_file_hashes)


def parse_file_hashes(result: ProbeResult) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for line in result.lines():
        digest, _, path = line.partition(" ")
        out[path.strip()] = None if digest == "-" else digest
    return out


def command_json(command: str, timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """A command printing JSON (one document, or one per line): the parsed value(s)."""
    return Probe(command, timeout, parse_json)


def parse_json(result: ProbeResult) -> Any:
    text = result.out.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        docs = []
        for line in text.splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
        return docs


def file_sha256(paths: Sequence[str], timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """{path: sha256 hex} of each of `paths` that is a readable file (a missing one is absent)."""
    files = " ".join(shlex.quote(p) for p in paths)
    return Probe(f"sha256sum -- {files} 2>/dev/null; true", timeout, parse_sha256, batch=("sha256", tuple(paths)))


def parse_sha256(result: ProbeResult | None) -> dict[str, str]:
    """`sha256sum` lines -> {path: sha256 hex} (nothing when not probed)."""
    out: dict[str, str] = {}
    for line in result.lines() if result is not None else []:
        digest, _, path = line.partition("  ")
        if len(digest) == 64 and path:
            out[path] = digest
    return out


# Docker: each CLI start is a Go binary and a daemon round trip (~25 ms of a small host's CPU),
# so the apps and the ingress layer ask one `image inspect` and one `ps` + `inspect` together.
DOCKER_TIMEOUT = 20.0
IMAGE_FORMAT = "{{.Id}} {{json .RepoTags}} {{json .RepoDigests}}"
DOCKER_ANSWERS = "docker answers"  # the containers probe's first line when the daemon answered


def docker_images(refs: Sequence[str], timeout: float = DOCKER_TIMEOUT) -> Probe:
    """A line `id tags-json digests-json` per image found under `refs` (names or ids); docker
    skips the missing ones, so the askers match lines to refs by tag or id."""
    args = " ".join(shlex.quote(a) for a in refs)
    cmd = f"docker image inspect --format {shlex.quote(IMAGE_FORMAT)} {args} 2>/dev/null; true" if args else "true"
    return Probe(cmd, timeout, batch=("images", tuple(refs)))


def container_format(labels: Sequence[str]) -> str:
    """`docker inspect -f` of one JSON line per container: the `labels` asked for, its state,
    health, image id, restarts and start time. Only these fields: a full `docker inspect`
    holds the containers' environment (secrets)."""
    fields = ",".join(f"{json.dumps(lb)}:{{{{json (index .Config.Labels {json.dumps(lb)})}}}}" for lb in labels)
    return ('{"Labels":{' + fields + '},"State":{{json .State.Status}},'
            '"Health":{{if .State.Health}}{{json .State.Health.Status}}{{else}}""{{end}},'
            '"Image":{{json .Image}},"RestartCount":{{.RestartCount}},"StartedAt":{{json .State.StartedAt}}}')


def docker_containers(labels: Sequence[str], timeout: float = DOCKER_TIMEOUT) -> Probe:
    """Every container on the host, a `container_format` line each; first DOCKER_ANSWERS when
    `docker ps` answered (the daemon runs)."""
    return Probe(f"ids=$(docker ps -aq 2>/dev/null) || exit 0; echo '{DOCKER_ANSWERS}'; "
                 f"[ -z \"$ids\" ] || docker inspect -f {shlex.quote(container_format(labels))} $ids", timeout,
                 batch=("containers", tuple(labels)))


def container_rows(result: ProbeResult | None) -> list[dict[str, Any]]:
    return json_rows(result.out) if result is not None and not result.timed_out else []


def json_rows(text: str) -> list[dict[str, Any]]:
    """One JSON object per line; other lines (docker's error for a container removed between
    `ps` and `inspect`: a probe's stderr is in its output) are skipped."""
    rows = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


BATCHES: dict[str, Callable[[Sequence[str], float], Probe]] = {
    "packages": packages, "units": unit_states, "sha256": file_sha256, "images": docker_images,
    "containers": docker_containers}
SHARED = "host."  # the key prefix of a batched question's one answer


def batch_groups(groups: Sequence[Mapping[str, AnyProbe]]) -> tuple[list[dict[str, AnyProbe]], dict[str, str]]:
    """Pure: the groups with each batched question asked once, for every layer's items (the
    quick ones in a group of their own, each with a limit of its own in a group alone); and
    {asker's key: the key of the one answer} for `answer_batches`."""
    asked: dict[str, list[str]] = {}
    limit: dict[str, float] = {}
    aliases: dict[str, str] = {}
    out: list[dict[str, AnyProbe]] = []
    for group in groups:
        kept: dict[str, AnyProbe] = {}
        for key, probe in group.items():
            p = as_probe(probe)
            if p.batch is None:
                kept[key] = probe
                continue
            kind, items = p.batch
            seen = asked.setdefault(kind, [])
            seen += [i for i in items if i not in seen]
            limit[kind] = max(limit.get(kind, 0.0), p.timeout)
            aliases[key] = SHARED + kind
        if kept:
            out.append(kept)
    shared: dict[str, AnyProbe] = {SHARED + kind: BATCHES[kind](items, limit[kind]) for kind, items in asked.items()}
    quick = {k: p for k, p in shared.items() if as_probe(p).shares_budget}
    # the quick reads in one group, and each question that may hang (docker's images, its
    # containers) in one of its own: all side by side. In one group, images then containers
    # were the longest path of an app host's no-op (~26 + ~42 ms)
    out += [quick] if quick else []
    out += [{k: p} for k, p in shared.items() if k not in quick]
    return out, aliases


def answer_batches(results: Mapping[str, ProbeResult], aliases: Mapping[str, str]) -> dict[str, ProbeResult]:
    """Pure: each asker of a batched question gets the one answer (its parser picks its items)."""
    out = dict(results)
    for key, shared in aliases.items():
        if shared in results:
            out[key] = results[shared]
    return out


def render_probe_script(probes: Mapping[str, AnyProbe] | Sequence[Mapping[str, AnyProbe]],
                        nonce: str | None = None, shared: float = DEFAULT_TIMEOUT) -> tuple[str, str]:
    """Pure: (script, nonce). Each snippet runs in its own subshell, stderr merged, rc kept.

    `probes` is one group or a list of groups (one per layer). Snippets of a group run in
    order (a layer may rely on it: ping first, then read handshakes); groups run at the same
    time, each a background subshell writing its own temp file, and the output is printed in
    order once all are done. A no-op apply waits for the slowest layer, not for the sum of them.

    Time limits: a probe given its own timeout (network, a daemon, restic: what may hang)
    runs under its own `timeout`. The quick local reads that keep DEFAULT_TIMEOUT run as plain
    subshells, and the whole script runs under ONE `timeout`: `script_budget`, the longest
    group's (`shared` for its quick reads plus its probes' own limits). A `timeout` + `sh -c`
    costs ~2.2 ms of a small host's CPU; one per probe was a fifth of a lower-layer host's
    no-op, one per group still 8%. At the limit, `timeout` stops its whole process group:
    every group still running ends there, its unfinished probes read as timed out
    (`parse_probe_output`: its end marker is missing), and the groups that had finished report.
    The price: a quick read that hangs ends at the script's limit, not at its own group's.
    """
    nonce = nonce or secrets.token_hex(8)
    groups = [g for g in ([probes] if isinstance(probes, Mapping) else list(probes)) if g]
    for group in groups:
        for key in group:
            if not PROBE_KEY.match(key):
                raise ValueError(f"bad probe key {key!r}")
    # `_hl_d` reaches the groups through the environment; a probe that reads a variable before
    # setting it must not find ours, hence the odd name
    parts = ["export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             '_hl_d=$(mktemp -d) || exit 1', "trap 'rm -rf \"$_hl_d\"' EXIT", "export _hl_d"]
    inner = []
    for index, group in enumerate(groups):
        body = []
        for key, probe in group.items():
            p = as_probe(probe)
            if p.shares_budget:
                run = f"(\n{p.command}\n) </dev/null 2>&1"  # newlines: a snippet may end in a comment
            else:  # -k: a probe that ignores TERM is killed 2 s later
                run = f"timeout -k 2 {p.timeout:g} sh -c {shlex.quote(p.command)} </dev/null 2>&1"
            # the markers are printf builtins, so a probe costs its own processes only
            body += [f"printf '%s\\n' '@{nonce} begin {key}'", run, f"printf '\\n@{nonce} end {key} %s\\n' $?"]
        body.append(f"printf '\\n@{nonce} group {index}\\n'")  # the group ran to its end
        inner.append("(\n" + "\n".join(body) + f'\n) </dev/null >"$_hl_d/{index}" 2>&1 &')
    if groups:
        inner.append("wait")
        parts.append(f"timeout -k 2 {script_budget(groups, shared):g} sh -c {shlex.quote(chr(10).join(inner))} "
                     "</dev/null >/dev/null 2>&1")
        parts.append("cat " + " ".join(f'"$_hl_d/{i}"' for i in range(len(groups))) + " 2>/dev/null")
    return "\n".join(parts) + "\n", nonce


def parse_probe_output(text: str, nonce: str,
                       groups: Sequence[Mapping[str, AnyProbe]] = ()) -> dict[str, ProbeResult]:
    """Pure: split the script's output back into one result per probe. A probe without its end
    marker was stopped at the script's time limit: it reads as timed out, with what it
    printed; with `groups` (as rendered), so do the probes of an unfinished group that never
    started."""
    results: dict[str, ProbeResult] = {}
    begin, end, group = f"@{nonce} begin ", f"@{nonce} end ", f"@{nonce} group "
    key: str | None = None
    buf: list[str] = []
    finished: set[int] = set()  # the groups that ran to their end

    def stopped() -> None:
        if key is not None:
            results[key] = ProbeResult(TIMED_OUT, _joined(buf))

    for line in text.split("\n"):
        if line.startswith(begin):
            stopped()
            key, buf = line[len(begin):], []
        elif line.startswith(end) and key is not None:
            k, _, rc = line[len(end):].rpartition(" ")
            results[k] = ProbeResult(int(rc) if rc.lstrip("-").isdigit() else 255, _joined(buf))
            key = None
        elif line.startswith(group):
            stopped()
            done = line[len(group):].strip()
            if done.isdigit():
                finished.add(int(done))
            key = None
        elif key is not None:
            buf.append(line)
    stopped()
    for i, probes in enumerate(g for g in groups if g):  # an empty group is not rendered
        if i not in finished:
            for k in probes:
                results.setdefault(k, ProbeResult(TIMED_OUT, ""))
    return results


def _joined(lines: list[str]) -> str:
    out = "\n".join(lines)
    return out[:-1] if out.endswith("\n") else out
