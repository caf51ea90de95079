"""The layer contract (issue 8): a new layer is its package plus one registry entry; plans that
were reviewed are what applies; probes have their own time limits; logins recorded by an apply
fall back to the config's own.

The engine runs on the fake transport (its injected seam): no socket, no worker process.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from homelab import cli, registry
from homelab.config import load_config
from homelab.engine import Engine
from homelab.events import ChangeApplied, ChangeFailed, LayerPlanned, LayerStatus, RunFinished
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext, RunOptions
from homelab.model import Change, Health, LayerPlan, Monitor, Op
from homelab.probe import Probe
from homelab.reviewed import ReviewedPlan
from homelab.errors import HomelabError
from fake_transport import FakeTransport

EXTRA_PACKAGE = '''
"""A layer made in a test: config section `extra`, one API change, one monitor."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from homelab.layers.base import Layer, Observed, RunContext
from homelab.model import Change, Health, LayerPlan, Monitor


@dataclass(frozen=True)
class ExtraConfig:
    widgets: int


def parse_extra(sec):
    widgets = sec.integer("widgets", 1, lo=0, hi=9)
    sec.done(["widgets"])
    return ExtraConfig(widgets or 0)


class ExtraLayer(Layer):
    name = "extra"

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("extra") is not None

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        n = ctx.config.get("extra").widgets
        made = ctx.state.section("extra").get("widgets", 0)
        if made == n:
            return LayerPlan("extra", unchanged=(f"{n} widgets",))
        return LayerPlan("extra", (Change("extra", "widgets", "create", f"make {n} widgets"),))

    def apply_change(self, ctx: RunContext, change: Change) -> Iterator[object]:
        ctx.state.section("extra")["widgets"] = ctx.config.get("extra").widgets
        yield from ()

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        return [Monitor("extra", "widgets", "count", Health.OK, "all there")]
'''


@pytest.fixture()
def extra_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> registry.LayerEntry:
    """The package, plus one registry entry: nothing else is changed."""
    pkg = tmp_path / "pkgs" / "extra_layer"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(EXTRA_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    entry = registry.LayerEntry("extra", 8, "extras", "widgets made in a test",
                                parse="extra_layer:parse_extra", layer="extra_layer:ExtraLayer", on_hosts=False)
    monkeypatch.setattr(registry, "LAYERS", registry.LAYERS + (entry,))
    yield entry
    sys.modules.pop("extra_layer", None)


def test_a_registered_layer_appears_everywhere(tmp_path: Path, extra_layer: registry.LayerEntry,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("extra:\n  widgets: 3\n")
    assert cli.main(["validate", str(cfg)]) == 0
    assert "sections: extra" in capsys.readouterr().out
    assert "extra (8)" in cli.build_parser()._subparsers._group_actions[0].choices["plan"].format_help()  # type: ignore[union-attr]
    assert cli.main(["plan", str(cfg), "--layer", "extra"]) == 3  # changes pending
    out = capsys.readouterr().out
    assert "make 3 widgets" in out
    assert cli.main(["apply", str(cfg), "--yes"]) == 0
    assert cli.main(["plan", str(cfg)]) == 0  # the second plan has nothing to do
    capsys.readouterr()
    assert cli.main(["status", str(cfg), "--json", "--layer", "extra"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["layers"]["extra"][0]["reason"] == "all there"
    from homelab.tui.sources import EngineSource

    assert ("extra", 8, "extras") in [(i.name, i.number, i.title) for i in EngineSource(cfg).layers()]
    # a typo in its section is located like any other
    cfg.write_text("extra:\n  widgetz: 3\n")
    assert cli.main(["validate", str(cfg)]) == 2
    assert "c.yaml:2:3: extra.widgetz: unknown key (hint: did you mean 'widgets'?)" in capsys.readouterr().err


def test_a_layer_that_is_not_built_is_refused_with_its_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("links:\n  x: 1\n")
    assert cli.main(["validate", str(cfg)]) == 2
    assert "layer 7 (links) is not supported yet" in capsys.readouterr().err


def test_registry_names_only_importable_code() -> None:
    for entry in registry.built():
        for ref in (entry.parse, entry.layer, entry.step, entry.claims, *(r for _, r in entry.commands)):
            if ref:
                assert registry.resolve(ref) is not None, ref
    with pytest.raises(ImportError, match="layer registry: cannot load"):
        registry.resolve("homelab.layers.nope:Nope")


# ------------------------------------------------------------ reviewed plan --
class Counter(Layer):
    """Per host: a file whose content the config sets; the probe reads it (a real `cat`)."""

    name = "mesh"  # borrows a built layer's registry entry (number, title)

    def __init__(self, root: Path, want: str = "1", slow: bool = False) -> None:
        self.root, self.want, self.slow = root, want, slow

    def contribute_hosts(self, ctx: RunContext) -> None:
        for h in ("a", "b"):
            ctx.add_host(HostTarget(h, "127.0.0.1", user="config-user"))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, Any]:
        probes: dict[str, Any] = {"mesh.value": f"cat {self.root}/{host.name} 2>/dev/null || true"}
        if self.slow and host.name == "a":
            probes["mesh.slow"] = Probe("sleep 20", timeout=1)
        return probes

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        changes, same = [], []
        for h in ("a", "b"):
            got = observed.probe(h, "mesh.value")
            if got is not None and got.out == self.want:
                same.append(f"{h}: {self.want}")
            elif got is not None:
                changes.append(Change("mesh", h, "update", f"set {self.want}", host=h,
                                      ops=(Op("files.put_text", {"content": self.want, "dest": f"{self.root}/{h}"}),)))
        return LayerPlan("mesh", tuple(changes), tuple(same))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        return [Monitor("mesh", h, "value", Health.OK, "read") for h in sorted(observed.hosts)]


def _engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer: Layer, **kw: Any) -> tuple[Engine, FakeTransport]:
    def effect(host: str, op: Op) -> None:
        Path(op.kwargs["dest"]).write_text(op.kwargs["content"])
        return None

    monkeypatch.setattr("homelab.engine.all_layers", lambda: [layer])
    cfg = tmp_path / "c.yaml"
    if not cfg.exists():  # the fake layer makes hosts a and b; the CLI wants a config that names them
        cfg.write_text(MACHINES_AB)
    transport = FakeTransport(on_op=effect, **kw)
    return Engine(load_config(cfg), RunOptions(yes=True), transport=transport), transport


MACHINES_AB = "version: 1\ncompute:\n  machines:\n    - {name: a, address: 10.0.0.1}\n    - {name: b, address: 10.0.0.2}\n"


def _plans(events: list[Any]) -> list[LayerPlan]:
    return [e.plan for e in events if isinstance(e, LayerPlanned)]


def test_apply_runs_the_reviewed_plan_and_refuses_what_was_not_reviewed(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = _engine(tmp_path, monkeypatch, Counter(tmp_path, "1"))
    reviewed = ReviewedPlan.of(engine.config.path, engine.config.digest, _plans(list(engine.plan())))
    assert reviewed.changes == 2
    # a host changed after the review: b now needs another change than the one shown
    (tmp_path / "a").write_text("1")  # a is done already: its reviewed change is simply not needed
    layer = Counter(tmp_path, "1")
    engine, transport = _engine(tmp_path, monkeypatch, layer)
    events = list(engine.apply(reviewed))
    assert [e.change.target for e in events if isinstance(e, ChangeApplied)] == ["b"]
    # now the config asks for something else than what was reviewed: refused, nothing applied
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path, "2"))
    events = list(engine.apply(reviewed))
    refused = [e for e in events if isinstance(e, ChangeFailed)]
    assert refused and all("not in the plan you reviewed" in e.error for e in refused)
    assert transport.ran == [] and (tmp_path / "a").read_text() == "1"
    assert not [e for e in events if isinstance(e, RunFinished)][0].ok


def test_a_saved_plan_is_refused_when_the_config_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    engine, _ = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    plan_file = tmp_path / "plan.json"
    ReviewedPlan.of(engine.config.path, engine.config.digest, _plans(list(engine.plan()))).save(plan_file)
    assert plan_file.stat().st_mode & 0o777 == 0o600
    (tmp_path / "c.yaml").write_text(MACHINES_AB + "# edited\n")
    with pytest.raises(HomelabError, match="changed since this plan was made"):
        _engine(tmp_path, monkeypatch, Counter(tmp_path))[0].apply(
            ReviewedPlan.from_json(json.loads(plan_file.read_text()), "plan.json"))
    assert cli.main(["apply", str(plan_file)]) == 1
    assert "changed since this plan was made; nothing was applied" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_a_probe_that_hangs_fails_only_its_own_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path, slow=True))
    events = list(engine.status())
    monitors = [m for e in events if isinstance(e, LayerStatus) for m in e.monitors]
    slow = [m for m in monitors if m.name == "probe"]
    assert [(m.subject, m.health) for m in slow] == [("a", Health.FAIL)]
    assert "probe mesh.slow timed out after 1 s" in slow[0].reason
    # both hosts were still read, in one remote command each
    assert {m.subject for m in monitors if m.name == "value"} == {"a", "b"}
    assert sorted(h for h, _ in transport.scripts) == ["a", "b"] and engine.remote_commands == 2


def test_a_no_op_apply_is_one_remote_command_per_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for h in ("a", "b"):
        (tmp_path / h).write_text("1")
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    events = list(engine.apply())
    assert [e for e in events if isinstance(e, RunFinished)][0].changes == 0
    assert engine.remote_commands == 2 and transport.ran == [] and len(transport.logins) == 2


def test_a_recorded_login_that_fails_falls_back_to_the_configured_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from homelab.state import State

    state = State(tmp_path / "c.state.json")
    for h in ("a", "b"):
        state.update_host(h, login_user="alice", login_port=2222, host_key="ssh-ed25519 AAAAfake")
        (tmp_path / h).write_text("1")
    state.save()
    # a was reinstalled: its alice is gone, the config's user works again; b still has alice
    refuse = (lambda t: "auth failed" if (t.name, t.user) == ("a", "alice") else None)
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path), refuse=refuse)
    events = list(engine.apply())
    assert [e for e in events if isinstance(e, RunFinished)][0].ok
    assert ("a", "config-user", 22) in transport.logins and ("b", "alice", 2222) in transport.logins
    saved = json.loads((tmp_path / "c.state.json").read_text())["hosts"]
    assert "login_user" not in saved["a"] and saved["b"]["login_user"] == "alice"


def test_plans_carry_what_apply_makes_true(tmp_path: Path) -> None:
    """Writes and outputs ride on changes; only applied ones take effect (no layer object state)."""
    from homelab.effects import take_effects
    from homelab.model import StateWrite
    from homelab.outputs import LoginAs
    from homelab.state import State

    ctx = RunContext(load_config(_config(tmp_path)), State(tmp_path / "s.json"))
    ctx.add_host(HostTarget("a", "127.0.0.1", user="root"))
    switch = Change("x", "a", "update", "sshd", host="a", outputs=(LoginAs("a", "alice", 2222),))
    gone = Change("x", "a", "delete", "user bob", host="a", writes=(StateWrite(("users",), "bob", discard=True),))
    plan = LayerPlan("x", (switch, gone), writes=(StateWrite(("users",), ["alice", "bob"]),))
    take_effects(ctx, "x", plan, [gone])
    assert ctx.state.section("x") == {"users": ["alice"]} and ctx.hosts["a"].user == "root"
    take_effects(ctx, "x", plan, [switch])
    assert ctx.hosts["a"].user == "alice" and ctx.state.host("a")["login_port"] == 2222


def _config(tmp_path: Path) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent("""\
        version: 1
        """))
    return p


def test_secrets_in_ops_are_revealed_only_for_the_worker() -> None:
    from homelab.secrets import Secret, SecretText

    op = Op("files.put_text", {"content": SecretText("key = ", Secret("s3cr3t"), "\n")})
    change = Change("mesh", "a", "create", "write", (op,), host="a")
    assert "s3cr3t" not in repr(change) and "s3cr3t" not in str(op.kwargs) and "s3cr3t" not in change.key
    assert op.to_json()[1]["content"] == "key = s3cr3t\n"
    assert dataclasses.replace(change).key == change.key


def test_claims_of_the_example_config_build_its_firewall() -> None:
    from homelab.claims import OpenPort

    cfg = load_config(Path(__file__).resolve().parents[2] / "config.example.yaml")
    web = {(c.owner, c.proto, c.port) for c in cfg.claims.of(OpenPort, "web-1")}
    # 80/443 from the ingress section (ingress_hosts is gone from the example)
    assert ("mesh", "udp", 51820) in web and ("ingress", "tcp", 443) in web and ("ingress", "udp", 443) in web
    assert ("permissions", "tcp", 443) not in web


def test_a_login_a_layer_made_is_tried_when_the_recorded_and_configured_ones_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An apply killed after hardening sshd but before recording the switch: the operator user works."""
    from homelab.outputs import LoginCandidate

    for h in ("a", "b"):
        (tmp_path / h).write_text("1")

    class WithOperator(Counter):
        def contribute_hosts(self, ctx: RunContext) -> None:
            super().contribute_hosts(ctx)
            for h in ("a", "b"):
                ctx.outputs.publish(LoginCandidate(h, "ops", 22))
                ctx.state.update_host(h, host_key="ssh-ed25519 AAAAfake")

    refuse = (lambda t: "refused every key" if t.user == "config-user" else None)
    engine, transport = _engine(tmp_path, monkeypatch, WithOperator(tmp_path), refuse=refuse)
    events = list(engine.apply())
    assert [e for e in events if isinstance(e, RunFinished)][0].ok
    assert ("a", "ops", 22) in transport.logins
    saved = json.loads((tmp_path / "c.state.json").read_text())["hosts"]
    assert saved["a"]["login_user"] == "ops"  # the next run starts with the login that works


def test_every_reference_in_the_registry_resolves() -> None:
    """A "module:NAME" the registry names but the module lost (a CLI command, a parser, a step)
    fails here, not when a person first runs that command."""
    for entry in registry.LAYERS:
        refs = [entry.parse, entry.layer, entry.step, entry.claims, entry.derived_claims,
                *(ref for _, ref in entry.commands)]
        for ref in (r for r in refs if isinstance(r, str) and r):
            assert registry.resolve(ref) is not None, (entry.id, ref)
    for entry in registry.LAYERS:
        for name, ref in entry.commands:
            help_text, add_arguments, run = registry.resolve(ref)
            assert help_text and callable(add_arguments) and callable(run), (entry.id, name)


def test_an_unexpected_connect_error_ends_the_run_instead_of_hanging_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts are connected and probed in workers that report as each answers: a bug in one (an
    error that is no connect failure) must surface as that error, not wait forever."""
    import threading

    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path))

    def broken(target: Any, pinned: Any, accept_new: Any, use_agent: bool) -> Any:
        if target.name == "b":
            raise RuntimeError("bug in the transport")
        return FakeTransport.connect(transport, target, pinned, accept_new, use_agent)

    monkeypatch.setattr(transport, "connect", broken)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            list(engine.plan())
        except RuntimeError as exc:
            raised.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the run hung"
    assert [str(e) for e in raised] == ["bug in the transport"]
