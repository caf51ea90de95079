"""Cloud servers still coming up when a run starts: wait, done or fail (pure), and the wait itself
(a stand-in API object and a fake clock: no sleeping, no network)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.config.compute import ComputeConfig
from homelab.config.hetzner import HetznerConfig, Server
from homelab.config.schema import Config
from homelab.errors import HomelabError
from homelab.events import Event, Progress
from homelab.layers.base import Observed, RunContext
from homelab.layers.compute import ComputeLayer
from homelab.layers.compute.boot import (
    FAIL, READY, SSH_OTHER, SSH_PINNED, SSH_SILENT, SSH_UNCHECKED, WAIT, BootLook, boot_verdict, plan_waits,
    ssh_look, start_failures, wait_until_up,
)
from homelab.layers.compute.hetzner import apply_server_change
from homelab.providers.hcloud_api import CloudServer
from homelab.state import State

CFG = HetznerConfig(servers=(Server("web-1", "cx22", "fsn1"), Server("web-3", "cx22", "nbg1")),
                    action_timeout=300, ssh_timeout=60)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedPinnedPinnedPinnedPinnedPinnedPinned"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOther"


def server(name: str = "web-3", status: str = "initializing", ipv4: str | None = None) -> CloudServer:
    want = CFG.server(name)
    labels = CFG.labels_for(want) if want else {}
    return CloudServer(id=7, name=name, type="cx22", location="nbg1", status=status, ipv4=ipv4, labels=labels,
                       ipv6="2001:db8:7::1" if ipv4 else None)


def verdict(status: str, ipv4: str | None = None, ssh: str = SSH_UNCHECKED, waited: float = 0.0,
            ssh_waited: float = 0.0) -> tuple[str, str]:
    v = boot_verdict("web-3", BootLook(status, ipv4, ssh), waited, ssh_waited, CFG)
    return v.kind, v.reason


# ------------------------------------------------------------------ the decision --
@pytest.mark.parametrize("status, ipv4, reason", [
    ("initializing", None, "server initializing"),
    ("starting", None, "server starting"),
    ("migrating", "192.0.2.7", "server migrating to another Hetzner host"),
    ("running", None, "server running, no public IPv4 yet"),
])
def test_coming_up_means_wait(status: str, ipv4: str | None, reason: str) -> None:
    assert verdict(status, ipv4, waited=12) == (WAIT, reason)


def test_the_wait_says_how_long_of_how_long() -> None:
    v = boot_verdict("web-3", BootLook("initializing", None), 12.4, 0.0, CFG)
    assert v.progress("web-3") == "web-3: server initializing, waiting (12 s of 300 s)"
    v = boot_verdict("web-3", BootLook("running", "192.0.2.7", SSH_SILENT), 40.0, 5.2, CFG)
    assert v.progress("web-3") == "web-3: server running at 192.0.2.7, SSH not answering yet, waiting (5 s of 60 s)"


def test_up_means_running_with_an_address_and_the_pinned_key() -> None:
    assert verdict("running", "192.0.2.7", SSH_PINNED)[0] == READY
    assert verdict("running", "192.0.2.7", SSH_UNCHECKED)[0] == READY  # nobody looked: state vouches
    assert verdict("running", "192.0.2.7", SSH_SILENT, ssh_waited=59)[0] == WAIT
    assert verdict("running", "192.0.2.7", SSH_OTHER, ssh_waited=59) == (
        WAIT, "server running at 192.0.2.7, SSH offers another host key so far")


def test_past_the_deadline_fails_in_one_line_saying_what_to_do() -> None:
    v = boot_verdict("web-3", BootLook("initializing", None), 300.0, 0.0, CFG)
    assert (v.kind, v.reason) == (FAIL, "server web-3 is still initializing after 300 s")
    assert v.hint.startswith("run apply again in a while; if it stays like this, check the server in the "
                             "Hetzner Cloud Console")
    assert "\n" not in v.reason + v.hint
    v = boot_verdict("web-3", BootLook("running", "192.0.2.7", SSH_SILENT), 400.0, 60.0, CFG)
    assert (v.kind, v.reason) == (FAIL, "server web-3 did not answer SSH at 192.0.2.7 within 60 s")
    v = boot_verdict("web-3", BootLook("running", "192.0.2.7", SSH_OTHER), 400.0, 60.0, CFG)
    assert (v.kind, v.reason) == (FAIL, "server web-3 answers SSH with a host key other than the one homelab sent it")


@pytest.mark.parametrize("status, what", [
    ("off", "is powered off"), ("stopping", "is powering off"), ("deleting", "is being deleted"),
    ("rebuilding", "is being rebuilt"), ("unknown", "has status unknown"), ("", "has status unknown"),
])
def test_states_that_do_not_come_up_by_waiting_fail_at_once(status: str, what: str) -> None:
    kind, reason = verdict(status, "192.0.2.7")
    assert kind == FAIL and reason.startswith(f"server web-3 {what}")


def test_ssh_look_compares_the_offered_key_with_the_pinned_one() -> None:
    assert ssh_look(None, KEY) == SSH_SILENT
    assert ssh_look(KEY + " root@web-3", KEY) == SSH_PINNED  # the comment does not matter
    assert ssh_look(OTHER, KEY) == SSH_OTHER
    assert ssh_look(OTHER, None) == SSH_PINNED  # nothing pinned: the engine's first connection decides


# -------------------------------------------------------------------- the plan --
def test_plan_waits_for_listed_servers_that_are_not_hosts_yet() -> None:
    w = plan_waits(CFG, [server("web-1", "running", "192.0.2.1"), server("web-3")], hosts={"web-1"}, failed=())
    (c,) = w.changes
    assert (c.target, c.action, c.host, c.symbol) == ("server web-3", "wait", None, "*")
    assert c.summary == "wait until it is up and answers SSH (up to 300 s, then 60 s for SSH)"
    assert c.detail == ("now: server initializing",)
    assert c.ops[0].name == "hetzner.wait_server" and dict(c.ops[0].kwargs) == {"name": "web-3", "id": 7}
    assert w.names == ("web-3",) and w.failed == ()


def test_plan_waits_also_for_a_running_server_not_connected_yet() -> None:
    w = plan_waits(CFG, [server("web-3", "running", "192.0.2.9")], hosts=(), failed=())
    assert w.changes[0].detail == ("now: server running, not connected yet",)


def test_the_wait_is_the_same_change_whatever_the_server_does_meanwhile() -> None:
    # a plan reviewed while the server was initializing is still the plan applied once it is starting
    keys = {plan_waits(CFG, [server("web-3", status, ipv4)], hosts=(), failed=()).changes[0].key
            for status, ipv4 in [("initializing", None), ("starting", None), ("running", "192.0.2.9")]}
    assert len(keys) == 1


def test_plan_waits_for_nothing_connected_failed_unlisted_or_foreign() -> None:
    listed = [server("web-1", "running", "192.0.2.1"), server("web-3"), server("other", "initializing")]
    assert plan_waits(CFG, listed, hosts={"web-1"}, failed={"web-3"}).changes == ()
    assert plan_waits(CFG, [], hosts=(), failed=()).changes == ()


def test_a_powered_off_server_is_not_waited_for() -> None:
    w = plan_waits(CFG, [server("web-3", "off", "192.0.2.9")], hosts=(), failed=())
    assert w.changes == () and w.names == ()
    assert w.failed == ("web-3: server web-3 is powered off: homelab does not wait for it (power it on in the "
                        "Hetzner Cloud Console, then run apply again)",)


def test_start_failures_only_for_servers_state_does_not_record() -> None:
    listed = [server("web-1", "off", "192.0.2.1"), server("web-3", "off", "192.0.2.9"), server("other", "off")]
    assert list(start_failures(CFG, listed, known={"web-1"})) == ["web-3"]
    assert start_failures(CFG, [server("web-3")], known=()) == {}  # booting: waited for, not failed


def test_without_compute_in_the_run_nobody_waits_so_the_host_fails_saying_why() -> None:
    fails = start_failures(CFG, [server("web-3"), server("web-1", "running", "192.0.2.1")], known={"web-1"},
                           compute_runs=False)
    assert fails == {"web-3": "server web-3 is not up for homelab yet (server initializing): only the compute "
                              "layer waits for it (apply without --layer, or with --layer compute)"}


# -------------------------------------------------------------------- the wait --
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class StandInApi:
    """Answers get_server from a script of (status, ipv4), one per call; the last one repeats."""

    def __init__(self, script: list[tuple[str, str | None]]) -> None:
        self.script = script
        self.clock = FakeClock()
        self.reads = 0

    def get_server(self, server_id: int, name: str) -> CloudServer:
        status, ipv4 = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        return server(name, status, ipv4)


def run_wait(api: StandInApi, offered: list[str | None], cancelled: bool = False) -> tuple[list[Event], Any]:
    answers = iter(offered)
    gen = wait_until_up(api, CFG, api.get_server(7, "web-3"), KEY, lambda: cancelled,
                        offered=lambda address, port, key_type: next(answers, offered[-1]))
    events: list[Event] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_wait_polls_until_running_with_an_address_and_the_pinned_key() -> None:
    api = StandInApi([("initializing", None)] * 8 + [("running", None), ("running", "192.0.2.9")])
    events, up = run_wait(api, [None, None, KEY])
    assert (up.status, up.ipv4) == ("running", "192.0.2.9")
    assert [e.message for e in events if isinstance(e, Progress)] == [
        "web-3: server initializing, waiting (0 s of 300 s)",
        "web-3: server initializing, waiting (10 s of 300 s)",
        "web-3: server running, no public IPv4 yet, waiting (16 s of 300 s)",
        "web-3: server running at 192.0.2.9, SSH not answering yet, waiting (0 s of 60 s)",
    ]  # a line every 10 s, and when the reason changes; the second silent SSH look got none


def test_wait_fails_at_its_deadline_with_the_verdicts_words() -> None:
    api = StandInApi([("initializing", None)])
    with pytest.raises(HomelabError) as err:
        run_wait(api, [None])
    assert err.value.message == "server web-3 is still initializing after 300 s"
    assert "run apply again" in err.value.hint
    assert api.clock.now - 1000.0 == pytest.approx(300.0, abs=2.0)  # bounded: no longer than the limit


def test_wait_stops_when_the_run_is_cancelled() -> None:
    with pytest.raises(HomelabError, match="waiting for server web-3: cancelled"):
        run_wait(StandInApi([("initializing", None)]), [None], cancelled=True)


def test_wait_fails_at_once_for_a_server_powered_off_meanwhile() -> None:
    api = StandInApi([("initializing", None), ("off", None)])
    with pytest.raises(HomelabError, match="is powered off"):
        run_wait(api, [None])
    assert api.reads == 2


# ------------------------------------------------------------ the compute layer --
def context(tmp_path: Path) -> RunContext:
    cfg = Config(tmp_path / "c.yaml", sections={"compute": ComputeConfig(hetzner=CFG)})
    ctx = RunContext(cfg, State(tmp_path / "c.state.json"))
    ctx.state.section("compute")["servers"] = {"web-1": {"id": 1, "ipv4": "192.0.2.1"}}
    ctx.state.update_host("web-3", host_key=KEY)  # pinned before its create, as _create does
    return ctx


class ListingApi(StandInApi):
    def list_servers(self, selector: str) -> list[CloudServer]:
        return [server("web-1", "running", "192.0.2.1"), self.get_server(7, "web-3")]

    def list_volumes(self, selector: str) -> list[Any]:
        return []


def test_a_booting_server_is_no_host_yet_and_gets_a_wait_and_its_base_planned(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = ComputeLayer()
    layer._api = ListingApi([("initializing", None)])
    layer.contribute_hosts(ctx)
    assert set(ctx.hosts) == {"web-1"} and ctx.failed_hosts == {}
    plan = layer.diff(ctx, layer.observe(ctx, {}))
    waits = [c for c in plan.changes if c.action == "wait"]
    assert [c.target for c in waits] == ["server web-3"]
    base = {c.host for c in plan.changes if c.host}
    assert "web-3" in base  # its base in this same plan, as for a server this apply creates
    assert plan.unplanned == ()


def test_a_powered_off_server_state_does_not_know_fails_its_host_at_the_start(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = ComputeLayer()
    layer._api = ListingApi([("off", "192.0.2.9")])
    layer.contribute_hosts(ctx)
    assert "web-3" not in ctx.hosts
    assert ctx.failed_hosts["web-3"].startswith("server web-3 is powered off: homelab does not wait for it")


def apply_wait(ctx: RunContext, api: StandInApi) -> list[Event]:
    change = plan_waits(CFG, [server()], hosts=(), failed=()).changes[0]
    gen: Iterator[Event] = apply_server_change(ctx, api, CFG, change, "/k")
    return list(gen)


def test_applied_wait_records_the_server_and_makes_it_a_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import homelab.providers.ssh_wait as ssh_wait

    monkeypatch.setattr(ssh_wait, "offered_host_key", lambda address, port, key_type, timeout=5.0: KEY)
    ctx = context(tmp_path)
    events = apply_wait(ctx, StandInApi([("initializing", None), ("running", "192.0.2.9")]))
    assert any(isinstance(e, Progress) and "server initializing, waiting" in e.message for e in events)
    assert ctx.state.section("compute")["servers"]["web-3"]["ipv4"] == "192.0.2.9"
    host = ctx.hosts["web-3"]
    assert (host.address, host.user, host.key_path, host.ipv6) == ("192.0.2.9", "root", "/k", "2001:db8:7::1")
    assert ctx.failed_hosts == {}


def test_failed_wait_fails_the_host_so_its_base_is_skipped(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(HomelabError):
        apply_wait(ctx, StandInApi([("initializing", None), ("off", None)]))
    assert "web-3" not in ctx.hosts
    assert ctx.failed_hosts["web-3"].startswith("server web-3 is powered off")
