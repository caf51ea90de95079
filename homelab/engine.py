"""The engine: walks the layers, plans, applies, reports status — and yields Events.

Both front ends drive it the same way (`for event in Engine(...).apply(): render(event)`);
there is no provisioning logic in the CLI or the TUI. Per run:

1. every layer adds the hosts it knows (compute: adopted machines, created servers);
2. connect to all hosts in parallel (bounded), host keys checked against state;
3. ONE batched probe command per host collects what every layer needs to see;
4. per layer, in run order: observe (APIs) -> diff (pure) -> apply -> state saved.
A host that fails is reported and left out of later layers; the others go on.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Any, Generator, Iterator, Mapping

from homelab.config.schema import Config
from homelab.errors import HomelabError, HostDown, HostKeyError, LockedError, UsageError
from homelab.events import (
    NOT_RUN, ChangeApplied, ChangeFailed, Event, HostConnected, HostFailed, HostSummary,
    LayerFinished, LayerPlanned, LayerStarted, LayerStatus, Progress, RunFinished, RunStarted,
)
from homelab.hosts import HostTarget
from homelab.layers import all_layers
from homelab.layers.base import Layer, Observed, RunContext, RunOptions
from homelab.model import Change, Health, LayerPlan, Monitor
from homelab.effects import take_effects
from homelab.outputs import LoginCandidate
from homelab.reviewed import ReviewedPlan, check_config_unchanged
from homelab.probe import (
    ProbeResult, answer_batches, as_probe, batch_groups, parse_probe_output, render_probe_script, script_timeout,
)
from homelab.provision.changes import flatten, secrets_in, track
from homelab.secrets import Secret, redact
from homelab.transport import OpsRun, Session, SshTransport, Transport
from homelab.state import RunLock, State

log = logging.getLogger("homelab")

Probed = dict[str, dict[str, ProbeResult]]
ProbeOutcome = tuple[dict[str, ProbeResult] | None, str]  # (results, or None and why not)
MAX_PASSES = 3  # plan -> apply rounds one layer may take in one apply (Layer.plan_again)
WAIT_STEP_S = 3.0  # between tries of a known host that does not answer (RunOptions.wait_for_hosts)


def redact_event(event: Any, secrets: list[Secret]) -> Any:
    """Replace secret values in every string of an event (nested dataclasses and tuples)."""
    if not any(s.reveal() for s in secrets):
        return event

    def clean(v: Any) -> Any:
        if isinstance(v, Enum):  # Health is a str Enum: replacing in it would turn it into a plain str
            return v
        if isinstance(v, str):
            return redact(v, secrets)
        if isinstance(v, tuple):
            return tuple(clean(x) for x in v)
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.replace(v, **{f.name: clean(getattr(v, f.name)) for f in dataclasses.fields(v)
                                             if f.init})
        return v

    return clean(event)


def host_summaries(hosts: list[str], unreachable: set[str], failed: Mapping[str, str], changed: Mapping[str, int],
                   cancelled: bool) -> tuple[HostSummary, ...]:
    """One line per host for the end of a run. "unreachable" only if it never answered; after a
    cancel a host that did not fail is "cancelled" (its changes so far counted), not "ok"."""
    def result(name: str) -> str:
        if name in unreachable:
            return "unreachable"
        if name in failed:
            return "failed"
        if cancelled:
            return "cancelled"
        return "changed" if changed.get(name) else "ok"

    return tuple(HostSummary(name, result(name), changed.get(name, 0), failed.get(name, "")) for name in hosts)


class Engine:
    def __init__(self, config: Config, options: RunOptions | None = None, log_path: Path | None = None,
                 transport: Transport | None = None) -> None:
        self.config = config
        self.options = options or RunOptions()
        self.log_path = log_path
        self.transport: Transport = transport or SshTransport()
        self.connections: dict[str, Session] = {}
        self.cancelled = threading.Event()
        self._worker: OpsRun | None = None
        self.reviewed: ReviewedPlan | None = None
        self._unreachable: set[str] = set()  # hosts never connected to or probed (vs. failed while applying)
        self._probe_owner: dict[str, tuple[str, float]] = {}  # probe key -> (layer, its timeout)
        self._configured: dict[str, HostTarget] = {}  # hosts as configured, where a recorded login differs
        self.remote_commands = 0  # benchmarks read this
        # held by connect workers while they change the run's hosts and state, and while a probe
        # script is rendered from them (hosts are probed the moment each is connected)
        self._shared = threading.Lock()

    # ---------------------------------------------------------------- public --
    def plan(self) -> Iterator[Event]:
        return self._run("plan")

    def apply(self, reviewed: ReviewedPlan | None = None) -> Iterator[Event]:
        """Apply; with `reviewed`, only what that plan showed (see homelab/reviewed.py)."""
        if reviewed is not None:
            check_config_unchanged(reviewed, self.config.digest)
        self.reviewed = reviewed
        return self._run("apply")

    def status(self) -> Iterator[Event]:
        return self._run("status")

    def open_host(self, name: str) -> Session:
        """A session to one host of the config, logged in as a run would (recorded login, pinned
        key): for commands that talk to one host (`homelab apps rollback`). Caller closes it."""
        state = State.load(self.config.state_path)
        ctx = RunContext(self.config, state, self.options)
        for layer in all_layers():
            layer.contribute_hosts(ctx)
        self._use_recorded_logins(ctx)
        if name not in ctx.hosts:
            raise UsageError(f"{name} is not a machine or server of {self.config.path}",
                             f"hosts: {', '.join(sorted(ctx.hosts)) or 'none'}")
        list(self._connect(ctx, [ctx.hosts[name]]))
        if name not in self.connections:
            raise HomelabError(f"cannot reach {name}: {ctx.failed_hosts.get(name, 'connect failed')}")
        return self.connections.pop(name)

    def cancel(self) -> None:
        self.cancelled.set()
        if self._worker is not None:
            self._worker.cancel()

    # ---------------------------------------------------------------- run -----
    def _selected(self, layers: list[Layer]) -> list[Layer]:
        wanted = self.options.layers
        if not wanted:
            return layers
        unknown = set(wanted) - {layer.name for layer in layers}
        if unknown:
            raise UsageError(f"--layer {', '.join(sorted(unknown))}: no such layer",
                             f"layers: {', '.join(layer.name for layer in layers)}")
        return [layer for layer in layers if layer.name in wanted]

    def _run(self, command: str) -> Iterator[Event]:
        lock = RunLock(self.config.state_path)
        if command == "apply":
            lock.acquire(command)
        ctx: RunContext | None = None
        try:
            state = State.load(self.config.state_path)
            ctx = RunContext(self.config, state, self.options, command, cancelled=self.cancelled)
            layers = all_layers()
            selected = self._selected(layers)
            for layer in layers:
                layer.contribute_hosts(ctx)
            self._use_recorded_logins(ctx)
            gen = self._walk(command, ctx, selected)
            for event in gen:
                yield redact_event(event, ctx.secrets)
        finally:
            for conn in self.connections.values():
                conn.close()
            self.connections.clear()
            if ctx is not None and command != "apply" and ctx.state.dirty:
                self._save_pins(ctx.state)
            lock.release()

    def _use_recorded_logins(self, ctx: RunContext) -> None:
        """Log in the way an earlier apply left each host (`LoginAs`: the operator user, another
        sshd port). The host as configured stays the fallback (a reinstalled machine)."""
        for name, target in list(ctx.hosts.items()):
            info = ctx.state.host(name)
            user, port = info.get("login_user"), info.get("login_port")
            if user or port:
                self._configured[name] = target
                ctx.hosts[name] = dataclasses.replace(target, user=user or target.user, port=port or target.port)

    def _save_pins(self, state: State) -> None:
        """plan/status may pin newly accepted host keys; they save only if no apply runs."""
        lock = RunLock(state.path)
        try:
            lock.acquire("pin host keys")
        except LockedError:
            return
        try:
            fresh = State.load(state.path)
            for name, info in state.data.get("hosts", {}).items():
                if "host_key" in info and "host_key" not in fresh.host(name):
                    fresh.update_host(name, host_key=info["host_key"])
            fresh.save()
        finally:
            lock.release()

    def _walk(self, command: str, ctx: RunContext, layers: list[Layer]) -> Iterator[Event]:
        started = time.monotonic()
        yield RunStarted(command, tuple(layer.name for layer in layers), tuple(sorted(ctx.hosts)),
                         str(self.log_path or ""), ctx.config.digest)
        probe_layers = [layer for layer in layers if layer.enabled(ctx)]
        probed: Probed = yield from self._connect(ctx, list(ctx.hosts.values()), probe_layers)
        initial_hosts = set(ctx.hosts)
        changed_hosts: dict[str, int] = {}
        total_changes = 0
        ok = True
        for i, layer in enumerate(layers):
            if self.cancelled.is_set():
                ok = False
                for left_out in layers[i:]:  # each layer that did not run says so
                    yield LayerFinished(left_out.name, 0, 0, NOT_RUN)
                break
            yield LayerStarted(layer.name, layer.number, layer.title)
            if not layer.enabled(ctx):
                yield LayerFinished(layer.name, 0, 0, "nothing configured")
                continue
            try:
                observed, plan = self._observe_and_diff(ctx, layer, probed)
            except HomelabError as exc:
                ok = False
                yield self._plan_failed(layer, exc)
                yield LayerFinished(layer.name, 0, 1)
                continue
            slow = self._timed_out(probed, layer)
            if slow:
                plan = dataclasses.replace(plan, warnings=plan.warnings + tuple(slow))
            if ctx.failed_hosts and type(layer).probes is not Layer.probes:
                # a layer that looks at hosts could not look at these: its plan says so, never "no changes"
                plan = dataclasses.replace(plan, unplanned=plan.unplanned + tuple(
                    f"{name}: {why}" for name, why in sorted(ctx.failed_hosts.items())))
            yield LayerPlanned(layer.name, plan)
            if command == "apply" and self.reviewed is not None:
                unreviewed = self.reviewed.unreviewed(plan, set(ctx.hosts) - initial_hosts)
                if unreviewed:
                    ok = False
                    yield from self._refuse_unreviewed(layer, unreviewed)
                    yield LayerFinished(layer.name, 0, len(unreviewed))
                    break  # nothing above a layer that changed under the review may run
            if command == "status":
                yield LayerStatus(layer.name, tuple(layer.status(ctx, observed)) + tuple(
                    Monitor(layer.name, line.split(":")[0], "probe", Health.FAIL, line.split(": ", 1)[1])
                    for line in slow))
                yield LayerFinished(layer.name, 0, 0)
                continue
            if command != "apply" or (plan.empty and not plan.blocked):
                total_changes += len(plan.changes)
                yield LayerFinished(layer.name, 0, 0)
                continue
            if plan.blocked:  # also without changes: an over-budget bill blocks the layers above
                ok = False
                for reason in plan.blocked:
                    yield ChangeFailed(Change(layer.name, layer.name, "run", "blocked"), reason,
                                       "change the config and run plan again")
                yield LayerFinished(layer.name, 0, len(plan.blocked))
                break  # nothing above a blocked layer may run on a half-built base
            hosts_before = set(ctx.hosts)
            applied: list[Change] = []
            failed = 0
            for pass_no in range(1, MAX_PASSES + 1):
                applied_now: list[Change] = []
                for event in self._apply_plan(ctx, layer, plan):
                    if isinstance(event, ChangeApplied):
                        applied_now.append(event.change)
                        if event.change.host:
                            changed_hosts[event.change.host] = changed_hosts.get(event.change.host, 0) + 1
                    elif isinstance(event, ChangeFailed):
                        failed += 1
                    yield event
                take_effects(ctx, layer.name, plan, applied_now, self._configured)
                ctx.state.save()  # what is applied is never lost to a later failure
                applied += applied_now
                # a layer whose first changes make what the rest of its plan needs (keys generated
                # on hosts, read back) looks and plans again, within this same apply
                if pass_no == MAX_PASSES or self.cancelled.is_set() or not layer.plan_again(ctx, plan):
                    break
                next_plan: LayerPlan | None = None
                for event in self._plan_again(ctx, layer, probed, plan):
                    if isinstance(event, LayerPlanned):
                        next_plan = event.plan
                    elif isinstance(event, ChangeFailed):
                        failed += 1
                    yield event
                if next_plan is None or next_plan.empty:
                    break
                if self.reviewed is not None:
                    unreviewed = self.reviewed.unreviewed(next_plan, set(ctx.hosts) - initial_hosts, later_pass=True)
                    if unreviewed:
                        failed += len(unreviewed)
                        yield from self._refuse_unreviewed(layer, unreviewed)
                        break
                plan = next_plan
            total_changes += len(applied)
            ok = ok and failed == 0
            yield LayerFinished(layer.name, len(applied), failed)
            # new hosts (servers just created) and hosts just changed are looked at again,
            # once, for the layers still to come
            rest = [layer for layer in layers[i + 1:] if layer.enabled(ctx)]
            new = [ctx.hosts[n] for n in sorted(set(ctx.hosts) - hosts_before)]
            if new:
                yield from self._connect(ctx, new)
            again = [h for h in ctx.live_hosts() if h.name in {c.host for c in applied} or h in new]
            if rest and again:
                probed.update(self._probe(ctx, again, rest))
        if command == "apply":
            ctx.state.save()
        # a server that never became a host (still booting past its deadline) is in the summary too
        summary = host_summaries(sorted(set(ctx.hosts) | set(ctx.failed_hosts)), self._unreachable, ctx.failed_hosts,
                                 changed_hosts, self.cancelled.is_set())
        ok = ok and not ctx.failed_hosts
        self.remote_commands = sum(c.commands for c in self.connections.values())
        log.info("%s finished in %.2f s, %d remote commands", command, time.monotonic() - started,
                 self.remote_commands)
        cancelled = self.cancelled.is_set()
        message = ("cancelled" if cancelled else "" if ok else
                   "some hosts could not be reached" if ctx.failed_hosts and command != "apply" else
                   "some hosts or changes failed")
        yield RunFinished(command, ok, total_changes, summary, str(self.log_path or ""), message, cancelled)

    def _timed_out(self, probed: Probed, layer: Layer) -> list[str]:
        """'host: probe KEY timed out after N s' for this layer's probes that hit their limit:
        they fail only this layer's checks; the host and its other layers carry on."""
        out = []
        for host, results in sorted(probed.items()):
            for key, result in sorted(results.items()):
                owner = self._probe_owner.get(key)
                if owner and owner[0] == layer.name and result.timed_out:
                    out.append(f"{host}: probe {key} timed out after {owner[1]:g} s (its checks are unknown)")
        return out

    @staticmethod
    def _for_layer(probed: Probed, ctx: RunContext) -> dict[str, dict[str, ProbeResult]]:
        return {name: results for name, results in probed.items() if name not in ctx.failed_hosts}

    # ---------------------------------------------------------------- hosts ---
    def _connect(self, ctx: RunContext, hosts: list[HostTarget],
                 probe_layers: list[Layer] | None = None) -> Generator[Event, None, Probed]:
        """Connect to `hosts`; with `probe_layers`, each host is probed the moment it is connected
        (in the same worker): no host waits for the slowest handshake. Returns what was probed."""
        accept_lock = threading.Lock()

        def accept(target: HostTarget, key: str) -> bool:
            if self.options.accept_new_host_keys:
                return True
            if self.options.confirm_new_host_key is not None:
                with accept_lock:  # one prompt at a time
                    return self.options.confirm_new_host_key(target, key)
            return False

        def one(target: HostTarget) -> tuple[HostTarget, Session | None, str, float]:
            t0 = time.monotonic()
            pinned = ctx.state.host(target.name).get("host_key")
            target, conn, key, err, down = attempt(target, pinned)
            wait = self.options.wait_for_hosts
            if conn is None and down and pinned and wait > 0:
                # met before and not answering now: most often a reboot (unattended upgrades)
                # or a machine just switched on; worth a wait before the run gives up on it
                connected.put(Progress("connect", f"{target.name} does not answer; homelab reached it before, "
                                                  f"so it may be rebooting: trying again for up to {wait:.0f} s",
                                       host=target.name))
                deadline = t0 + wait
                while conn is None and down and time.monotonic() < deadline:
                    if ctx.cancelled.wait(min(WAIT_STEP_S, max(0.0, deadline - time.monotonic()))):
                        break
                    target, conn, key, err, down = attempt(target, pinned)
                if conn is None:
                    message, _, hint = err.partition("\n")
                    err = f"{message} (no answer for {time.monotonic() - t0:.0f} s)\n{hint}"
            if conn is not None and not pinned and key:  # a local host offers no key: nothing to pin
                with self._shared:
                    ctx.state.update_host(target.name, host_key=key)
            return target, conn, err, time.monotonic() - t0

        def attempt(target: HostTarget, pinned: str | None) -> tuple[HostTarget, Session | None, str, str, bool]:
            """One try of the host's logins: (the login that worked, its session or None, the host
            key it offered, why not, whether every login failed because no TCP connection was taken)."""
            use_agent = ctx.config.privilege.use_agent
            try:
                conn, key = self.transport.connect(target, pinned, accept, use_agent)
                return target, conn, key, "", False
            except HostKeyError as exc:  # a key question is never answered by trying another login
                return target, None, "", f"{exc.message}\n{exc.hint}", False
            except HomelabError as exc:
                first = exc
            # other logins the host may take: the config's own (a reinstalled machine, after a
            # recorded login), then what a layer says it makes (the operator user homelab
            # switches to: an apply killed between hardening sshd and recording the switch)
            tries = [t for t in [self._configured.get(target.name), *(
                dataclasses.replace(target, user=c.user, port=c.port, key_path=c.key_path or target.key_path)
                for c in ctx.outputs.all(LoginCandidate) if c.host == target.name)]
                if t is not None and (t.user, t.port) != (target.user, target.port)]
            failures = [f"{target.user}:{target.port}: {first.message}"]
            down = isinstance(first, HostDown)
            for other in dict.fromkeys(tries):
                try:
                    conn, key = self.transport.connect(other, pinned, accept, use_agent)
                except HostKeyError as exc:
                    return target, None, "", f"{exc.message}\n{exc.hint}", False
                except HomelabError as exc:
                    failures.append(f"{other.user}:{other.port}: {exc.message}")
                    down = down and isinstance(exc, HostDown)
                    continue
                log.warning("%s: the login %s:%d failed (%s); logged in as %s:%d", target.name, target.user,
                            target.port, first.message, other.user, other.port)
                configured = self._configured.get(target.name)
                with self._shared:
                    if configured is not None and (other.user, other.port) == (configured.user, configured.port):
                        ctx.state.forget_login(target.name)
                    else:
                        self._configured.setdefault(target.name, target)
                        ctx.state.update_host(target.name, login_user=other.user, login_port=other.port)
                    ctx.hosts[target.name] = other
                return other, conn, key, "", False
            why = first.message if not tries else "; ".join(failures)
            return target, None, "", f"{why}\n{first.hint}", down

        # None: a worker died of an error that is not a connect failure (its future re-raises it);
        # Progress: a host is being waited for (it stays in the count)
        connected: queue.Queue[tuple[HostTarget, Session | None, str, float] | Progress | None] = queue.Queue()

        def connected_and_probed(target: HostTarget) -> tuple[str, ProbeOutcome | None]:
            try:
                target, conn, err, secs = one(target)
            except BaseException:
                connected.put(None)  # never leave the loop below waiting for this host
                raise
            if conn is not None:
                self.connections[target.name] = conn
            connected.put((target, conn, err, secs))  # the run shows it now, while the probe runs
            if conn is None or probe_layers is None or target.name in ctx.failed_hosts:
                return target.name, None
            return target.name, self._probe_one(ctx, target, probe_layers)

        if not hosts:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.options.parallel, len(hosts)))) as pool:
            futures = [pool.submit(connected_and_probed, h) for h in hosts]
            answered = 0
            while answered < len(hosts):  # as each host answers (or does not)
                item = connected.get()
                if isinstance(item, Progress):
                    yield item
                    continue
                if item is None:
                    break
                answered += 1
                target, conn, err, secs = item
                if conn is None:
                    message, _, hint = err.partition("\n")
                    ctx.failed_hosts[target.name] = message
                    self._unreachable.add(target.name)
                    yield HostFailed(target.name, "connect", message, hint)
                    continue
                with self._shared:
                    ctx.state.update_host(target.name, address=target.address)
                yield HostConnected(target.name, f"{target.user}@{target.address}:{target.port}, {secs:.2f} s")
            outcomes = [f.result() for f in futures]
        probed: Probed = {}
        for name, outcome in outcomes:
            if outcome is not None:
                self._keep_probed(ctx, name, outcome, probed)
        return probed

    def _probe_one(self, ctx: RunContext, target: HostTarget, layers: list[Layer],
                   extra: Mapping[str, Mapping[str, str]] | None = None) -> ProbeOutcome:
        """Every layer's probes for one host in one remote command: (results or None, why not)."""
        groups = []
        with self._shared:  # other hosts may still be connecting: their logins and pins change state
            for layer in layers:
                group = dict(layer.probes(ctx, target))
                if extra and extra.get(target.name):
                    group.update(extra[target.name])
                for key, probe in group.items():
                    self._probe_owner[key] = (layer.name, as_probe(probe).timeout)
                if group:
                    groups.append(group)
        if not groups:
            return {}, ""
        groups, aliases = batch_groups(groups)  # one dpkg-query, one systemctl for every layer
        script, nonce = render_probe_script(groups)  # one group per layer, run side by side
        conn = self.connections[target.name]
        t0 = time.monotonic()
        try:
            res = conn.run_script(script, timeout=script_timeout(groups))
        except HomelabError as exc:
            return None, exc.message
        finally:
            log.info("%s: probed in %.2f s (%d probes)", target.name, time.monotonic() - t0,
                     sum(len(g) for g in groups))
        if res.rc != 0 and not res.stdout:
            return None, f"probe failed (exit {res.rc}): {res.stderr.strip()[:200]}"
        return answer_batches(parse_probe_output(res.stdout, nonce, groups), aliases), ""

    def _keep_probed(self, ctx: RunContext, name: str, outcome: ProbeOutcome, probed: Probed) -> None:
        results, err = outcome
        if results is None:
            ctx.failed_hosts[name] = err
            self._unreachable.add(name)
        else:
            probed[name] = results

    def _probe(self, ctx: RunContext, hosts: list[HostTarget], layers: list[Layer],
               extra: Mapping[str, Mapping[str, str]] | None = None) -> Probed:
        live = [h for h in hosts if h.name in self.connections and h.name not in ctx.failed_hosts]
        if not live:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(self.options.parallel, len(live)))) as pool:
            results = list(pool.map(lambda target: self._probe_one(ctx, target, layers, extra), live))
        out: Probed = {}
        for target, outcome in zip(live, results):
            self._keep_probed(ctx, target.name, outcome, out)
        return out

    def _plan_again(self, ctx: RunContext, layer: Layer, probed: Probed, previous: LayerPlan) -> Iterator[Event]:
        """Probe this layer's hosts again (plus what the previous plan asked for), then observe
        and diff: yields the new LayerPlanned."""
        hosts = [h for h in layer.targets(ctx) if h.name in self.connections]
        for name, results in self._probe(ctx, hosts, [layer], previous.followup_probes).items():
            probed.setdefault(name, {}).update(results)  # other layers' results stay
        try:
            _, plan = self._observe_and_diff(ctx, layer, probed)
        except HomelabError as exc:
            yield self._plan_failed(layer, exc)
            return
        yield LayerPlanned(layer.name, plan)

    def _observe_and_diff(self, ctx: RunContext, layer: Layer, probed: Probed) -> tuple[Observed, LayerPlan]:
        observed = layer.observe(ctx, self._for_layer(probed, ctx))
        return observed, layer.diff(ctx, observed)

    @staticmethod
    def _refuse_unreviewed(layer: Layer, changes: list[Change]) -> Iterator[Event]:
        for change in changes:
            yield ChangeFailed(change, f"{change.summary}: not in the plan you reviewed; not applied",
                               "the config or the hosts changed since the plan was made: run plan again")

    @staticmethod
    def _plan_failed(layer: Layer, exc: HomelabError) -> ChangeFailed:
        return ChangeFailed(Change(layer.name, layer.name, "run", f"{layer.name}: observe/plan"), exc.message, exc.hint)

    def _apply_plan(self, ctx: RunContext, layer: Layer, plan: LayerPlan) -> Iterator[Event]:
        api_changes = [c for c in plan.changes if c.host is None]
        # deferred changes are planned in full by the layer's next pass (see Layer.plan_again)
        host_changes = [c for c in plan.changes if c.host is not None and not c.deferred and c.ops]
        for change in api_changes:  # API work first: servers exist before hosts are configured
            if change.destructive and not self.options.confirm_destructive:
                yield ChangeFailed(change, f"{change.summary}: not confirmed",
                                   "deletes need --confirm-delete in addition to --yes")
                continue
            try:
                yield from layer.apply_change(ctx, change)
                yield ChangeApplied(change)
            except HomelabError as exc:
                log.warning("%s failed: %s", change.summary, exc.message)
                yield ChangeFailed(change, exc.message, exc.hint)
        if not self.options.confirm_destructive:
            # a host change that erases something (a disk format) needs the same confirmation
            for change in (c for c in host_changes if c.destructive):
                yield ChangeFailed(change, f"{change.summary}: not confirmed",
                                   "erasing data needs --confirm-delete in addition to --yes")
            host_changes = [c for c in host_changes if not c.destructive]
        if host_changes:
            yield from self._run_host_changes(ctx, layer, host_changes)

    def _run_host_changes(self, ctx: RunContext, layer: Layer, changes: list[Change]) -> Iterator[Event]:
        by_host: dict[str, list[Change]] = {}
        for change in changes:
            assert change.host is not None
            if change.host in ctx.failed_hosts:
                yield ChangeFailed(change, f"{change.host} failed earlier: {ctx.failed_hosts[change.host]}",
                                   "fix that host and apply again")
                continue
            by_host.setdefault(change.host, []).append(change)
        if not by_host:
            return
        ops, spans = flatten(by_host)
        targets = [ctx.hosts[h] for h in by_host]
        pins = {t: ctx.state.host(t.name)["host_key"] for t in targets if ctx.state.host(t.name).get("host_key")}
        redact = [s.reveal() for s in [*ctx.secrets, *secrets_in(ops)]]
        self._worker = self.transport.run_ops(targets, ops, pins, redact, self.options.parallel)
        try:
            yield from track(self._worker, layer.name, spans, ctx.failed_hosts, self.cancelled)
        finally:
            self._worker = None
