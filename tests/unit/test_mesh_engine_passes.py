"""The engine hook the mesh needs: a layer may plan again within one apply (Layer.plan_again).

A fake layer, no hosts: connecting, probing and the pyinfra worker are replaced, so only the
engine's pass logic runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab import engine as engine_mod
from homelab.config.schema import Config
from homelab.engine import MAX_PASSES, Engine
from homelab.events import ChangeApplied, LayerFinished, LayerPlanned, RunFinished
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext, RunOptions
from homelab.model import Change, LayerPlan, Op
from homelab.probe import ProbeResult


class FakeConnection:
    commands = 0

    def close(self) -> None:
        pass


class TwoStep(Layer):
    """Pass 1 makes a key and defers the config; pass 2 writes the config."""

    number = 1
    name = "mesh"
    title = "fake"

    def __init__(self, again: bool = True, forever: bool = False) -> None:
        self.again = again
        self.forever = forever
        self.passes: list[list[str]] = []
        self.probes_seen: list[str] = []

    def contribute_hosts(self, ctx: RunContext) -> None:
        ctx.add_host(HostTarget("x", "127.0.0.1"))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, str]:
        return {"fake.key": "cat key"}

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        result = observed.probe("x", "fake.key")
        self.probes_seen.append(result.out if result else "")
        has_key = result is not None and result.out == "key" and not self.forever
        changes = [Change("mesh", "x", "create", "write config", ops=(Op("files.put_text", {}),), host="x")] \
            if has_key else [Change("mesh", "x", "create", "make key", ops=(Op("server.shell", {}),), host="x"),
                             Change("mesh", "x", "create", "write config (later)", host="x")]
        return LayerPlan("mesh", tuple(changes))

    def after_apply(self, ctx: RunContext, plan: LayerPlan, applied: list[Change]) -> None:
        self.passes.append([c.summary for c in applied])

    def plan_again(self, ctx: RunContext, plan: LayerPlan) -> bool:
        return self.again and any(c.host and not c.ops for c in plan.changes)


def run_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer: TwoStep) -> list[Any]:
    made: list[str] = []
    monkeypatch.setattr(engine_mod, "all_layers", lambda: [layer])

    def connect(self: Engine, ctx: RunContext, hosts: list[HostTarget]) -> Iterator[Any]:
        for h in hosts:
            self.connections[h.name] = FakeConnection()  # type: ignore[assignment]
            ctx.state.update_host(h.name, host_key="ssh-ed25519 AAAA")
        return iter(())

    def probe(self: Engine, ctx: RunContext, hosts: list[HostTarget], layers: list[Layer]) -> dict:
        return {h.name: {"fake.key": ProbeResult(0, "key" if made else "")} for h in hosts}

    def run_host_changes(self: Engine, ctx: RunContext, layer: Layer, changes: list[Change]) -> Iterator[Any]:
        for c in changes:
            assert c.ops, "a deferred change reached the worker"
            made.append(c.summary)
            yield ChangeApplied(c)

    monkeypatch.setattr(Engine, "_connect", connect)
    monkeypatch.setattr(Engine, "_probe", probe)
    monkeypatch.setattr(Engine, "_run_host_changes", run_host_changes)
    monkeypatch.setattr(Engine, "_save_pins", lambda self, state: None)
    cfg = Config(path=tmp_path / "c.yaml")
    return list(Engine(cfg, RunOptions(yes=True)).apply())


def test_second_pass_reads_back_and_applies_the_deferred_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep()
    events = run_apply(tmp_path, monkeypatch, layer)
    plans = [e.plan for e in events if isinstance(e, LayerPlanned)]
    assert [[c.summary for c in p.changes] for p in plans] == [["make key", "write config (later)"], ["write config"]]
    assert [e.change.summary for e in events if isinstance(e, ChangeApplied)] == ["make key", "write config"]
    assert layer.passes == [["make key"], ["write config"]]
    assert layer.probes_seen == ["", "key"]  # pass 2 saw what pass 1 made
    finished = [e for e in events if isinstance(e, LayerFinished)][0]
    assert (finished.changed, finished.failed) == (2, 0)
    run = [e for e in events if isinstance(e, RunFinished)][0]
    assert run.ok and run.changes == 2


def test_layers_without_the_hook_run_once_and_deferred_changes_never_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep(again=False)
    events = run_apply(tmp_path, monkeypatch, layer)
    assert len([e for e in events if isinstance(e, LayerPlanned)]) == 1
    assert layer.passes == [["make key"]]


def test_passes_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep(forever=True)
    run_apply(tmp_path, monkeypatch, layer)
    assert len(layer.passes) == MAX_PASSES
