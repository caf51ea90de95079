"""The engine hook the mesh needs: a layer may plan again within one apply (Layer.plan_again).

A fake layer on a fake transport (the engine's injected seam): no socket, no worker; probes
run locally with bash and read a file the layer's first change writes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homelab.config.schema import Config
from homelab.engine import MAX_PASSES, Engine
from homelab.events import ChangeApplied, LayerFinished, LayerPlanned, RunFinished
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext, RunOptions
from homelab.model import Change, LayerPlan, Op, StateWrite
from fake_transport import FakeTransport


class TwoStep(Layer):
    """Pass 1 makes a key and defers the config; pass 2 writes the config."""

    name = "mesh"

    def __init__(self, key_file: Path, again: bool = True, forever: bool = False) -> None:
        self.key_file = key_file
        self.again = again
        self.forever = forever
        self.probes_seen: list[str] = []

    def contribute_hosts(self, ctx: RunContext) -> None:
        ctx.add_host(HostTarget("x", "127.0.0.1"))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, str]:
        return {"fake.key": f"cat {self.key_file} 2>/dev/null || true"}

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        result = observed.probe("x", "fake.key")
        self.probes_seen.append(result.out if result else "")
        has_key = result is not None and result.out == "key" and not self.forever
        done = StateWrite(("passes",), ctx.state.section("mesh").get("passes", 0) + 1)  # written after each pass
        changes = [Change("mesh", "x", "create", "write config", ops=(Op("files.put_text", {}),), host="x")] \
            if has_key else [Change("mesh", "x", "create", "make key", ops=(Op("server.shell", {}),), host="x"),
                             Change("mesh", "x", "create", "write config", host="x", deferred="needs the key")]
        return LayerPlan("mesh", tuple(changes), writes=(done,))

    def plan_again(self, ctx: RunContext, plan: LayerPlan) -> bool:
        return self.again and super().plan_again(ctx, plan)


def run_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer: TwoStep) -> tuple[list[Any], list[str]]:
    monkeypatch.setattr("homelab.engine.all_layers", lambda: [layer])
    applied: list[str] = []

    def on_op(host: str, op: Op) -> None:
        if op.name == "server.shell":  # "make key"
            layer.key_file.write_text("key")
        applied.append(op.name)
        return None

    cfg = Config(path=tmp_path / "c.yaml")
    events = list(Engine(cfg, RunOptions(yes=True), transport=FakeTransport(on_op=on_op)).apply())
    return events, applied


def test_second_pass_reads_back_and_applies_the_deferred_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep(tmp_path / "key")
    events, ran = run_apply(tmp_path, monkeypatch, layer)
    plans = [e.plan for e in events if isinstance(e, LayerPlanned)]
    assert [[c.summary for c in p.changes] for p in plans] == [["make key", "write config"], ["write config"]]
    assert plans[0].changes[1].deferred == "needs the key" and not plans[1].changes[0].deferred
    assert [e.change.summary for e in events if isinstance(e, ChangeApplied)] == ["make key", "write config"]
    assert ran == ["server.shell", "files.put_text"]  # the deferred change never reached the worker
    assert layer.probes_seen == ["", "key"]  # pass 2 saw what pass 1 made
    state = __import__("json").loads((tmp_path / "c.state.json").read_text())
    assert state["sections"]["mesh"]["passes"] == 2  # each pass's plan writes took effect, and were saved
    finished = [e for e in events if isinstance(e, LayerFinished)][0]
    assert (finished.changed, finished.failed) == (2, 0)
    run = [e for e in events if isinstance(e, RunFinished)][0]
    assert run.ok and run.changes == 2


def test_layers_without_the_hook_run_once_and_deferred_changes_never_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep(tmp_path / "key", again=False)
    events, ran = run_apply(tmp_path, monkeypatch, layer)
    assert len([e for e in events if isinstance(e, LayerPlanned)]) == 1
    assert ran == ["server.shell"]


def test_passes_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = TwoStep(tmp_path / "key", forever=True)
    events, ran = run_apply(tmp_path, monkeypatch, layer)
    assert len([e for e in events if isinstance(e, LayerPlanned)]) == MAX_PASSES
    assert ran == ["server.shell"] * MAX_PASSES
