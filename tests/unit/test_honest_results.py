"""Honest results (issue 12): a plan that could not look at a host says so and fails; a
cancelled apply says "cancelled", what was done, and which layers did not run; the summary
is a result (stdout, once). The engine runs on the fake transport."""
from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

from homelab import cli
from homelab.engine import Engine
from homelab.events import NOT_RUN, ChangeApplied, ChangeFailed, LayerFinished, LayerPlanned, RunFinished
from homelab.model import LayerPlan, Op
from homelab.render_text import TextRenderer
from homelab.tui.screens.apply import apply_status
from homelab.tui.screens.plan_review import plan_summary
from homelab.tui.view_state import RunView, reduce_all
from test_contract import Counter, _engine


class Second(Counter):
    name = "permissions"  # a second layer above the first (borrows a built layer's entry)

    def diff(self, ctx: Any, observed: Any) -> LayerPlan:
        plan = super().diff(ctx, observed)
        return LayerPlan("permissions", tuple(dataclasses.replace(c, layer="permissions") for c in plan.changes),
                         plan.unchanged)


def _finished(events: list[Any]) -> RunFinished:
    return [e for e in events if isinstance(e, RunFinished)][0]


def _through_cli(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """`homelab plan|apply` builds its own Engine: hand it ours (on the fake transport)."""
    monkeypatch.setattr("homelab.engine.Engine", lambda *a, **k: Engine(engine.config, engine.options,
                                                                         transport=engine.transport))


def test_a_plan_that_could_not_reach_a_host_says_so_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").write_text("1")  # a is converged; b cannot be reached
    engine, _ = _engine(tmp_path, monkeypatch, Counter(tmp_path), refuse=lambda t: "connection refused"
                        if t.name == "b" else None)
    events = list(engine.plan())
    plan = [e.plan for e in events if isinstance(e, LayerPlanned)][0]
    assert plan.empty and plan.unplanned == ("b: connection refused",)
    assert not _finished(events).ok and _finished(events).message == "some hosts could not be reached"
    _through_cli(monkeypatch, engine)
    assert cli.main(["plan", str(tmp_path / "c.yaml")]) == 1
    out = capsys.readouterr().out
    assert "layer 1 mesh: NOT PLANNED on 1 host(s)" in out and "? b: not planned, connection refused" in out
    assert "no changes" not in out
    # the TUI: the plan is incomplete, apply is not offered
    view = reduce_all(RunView(), events)
    summary = plan_summary(view).plain
    assert "plan INCOMPLETE: 1 host not planned (b)" in summary and "no changes" not in summary
    assert "a: apply" not in summary


def test_a_cancelled_apply_says_so_and_marks_what_did_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p").mkdir()
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    monkeypatch.setattr("homelab.engine.all_layers", lambda: [Counter(tmp_path), Second(tmp_path / "p")])

    def first_then_cancel(host: str, op: Op) -> None:
        Path(op.kwargs["dest"]).write_text(op.kwargs["content"])
        engine.cancel()  # the person pressed cancel while a's change ran
        return None

    transport.on_op = first_then_cancel
    events = list(engine.apply())
    fin = _finished(events)
    assert fin.cancelled and not fin.ok and fin.message == "cancelled" and fin.changes == 1
    assert [e.change.target for e in events if isinstance(e, ChangeApplied)] == ["a"]
    assert [(e.change.target, e.error) for e in events if isinstance(e, ChangeFailed)] == [("b", "cancelled: not run")]
    assert [e.layer for e in events if isinstance(e, LayerFinished) and e.skipped_reason == NOT_RUN] == ["permissions"]
    assert {h.host: h.result for h in fin.hosts} == {"a": "cancelled", "b": "cancelled"}
    assert (tmp_path / "a").read_text() == "1" and not (tmp_path / "b").exists()
    status = apply_status(reduce_all(RunView(), events)).plain
    assert status.startswith("apply cancelled: 1 change done · not run: permissions")
    # the CLI says the same: cancelled, the summary once on stdout, the layer that did not run
    out, err = io.StringIO(), io.StringIO()
    renderer = TextRenderer(out, err)
    for event in events:
        renderer(event)
    assert out.getvalue().count("summary:") == 1 and "not run (cancelled): permissions" in out.getvalue()
    assert "apply cancelled: 1 change(s) done" in err.getvalue() and "summary:" not in err.getvalue()


def test_the_apply_summary_is_a_result_on_stdout_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    engine, _ = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    _through_cli(monkeypatch, engine)
    assert cli.main(["apply", str(tmp_path / "c.yaml"), "--yes"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("summary:") == 1 and "summary:" not in captured.err
    assert "  a                changed (1 change(s))" in captured.out
    assert "apply ok: 2 change(s)" in captured.err


def test_forget_host_forgets_everything_learned_about_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from homelab.state import State

    (tmp_path / "c.yaml").write_text("version: 1\n")
    state = State(tmp_path / "c.state.json")
    for h in ("a", "b"):
        state.update_host(h, host_key="ssh-ed25519 AAAAold", login_user="alice", login_port=2222,
                          address="10.0.0.9", os="debian 13")
    state.save()
    assert cli.main(["forget-host", str(tmp_path / "c.yaml"), "a"]) == 0
    said = capsys.readouterr().out
    assert "address, host_key, login_port, login_user, os" in said
    hosts = State.load(tmp_path / "c.state.json").data["hosts"]
    assert "a" not in hosts and hosts["b"]["login_user"] == "alice"  # only that machine
    # the next run logs in to it as the config says, and pins the key it offers now
    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    list(engine.plan())
    assert ("a", "config-user", 22) in transport.logins and ("b", "alice", 2222) in transport.logins
    assert cli.main(["forget-host", str(tmp_path / "c.yaml"), "zz"]) == 2
    assert "homelab has learned nothing about zz" in capsys.readouterr().err


def test_status_last_line_counts_monitors_and_fails_with_a_fail() -> None:
    """`status` exits 1 when a monitor FAILs: its last line says FAILED too, with the counts (no
    "0 change(s)": status changes nothing)."""
    from homelab.events import LayerStatus
    from homelab.model import Health, Monitor

    def last_line(*healths: Health) -> str:
        err = io.StringIO()
        renderer = TextRenderer(io.StringIO(), err)
        renderer(LayerStatus("mesh", tuple(Monitor("mesh", f"m{i}", "link", h, "why") for i, h in enumerate(healths))))
        renderer(RunFinished("status", True, 0, (), "", ""))
        return err.getvalue().strip().splitlines()[-1]

    assert last_line(Health.OK, Health.FAIL, Health.WARN, Health.OK) == "status FAILED: 1 FAIL, 1 WARN, 2 OK"
    assert last_line(Health.OK, Health.UNKNOWN) == "status ok: 1 UNKNOWN, 1 OK"
    assert last_line() == "status ok: no monitors"
