"""reduce(view, event) without widgets: what each engine event means for the display."""
from __future__ import annotations

import dataclasses

from homelab.events import (
    ChangeApplied, ChangeFailed, HostConnected, HostFailed, HostOutput, LayerFinished, LayerStarted, LayerStatus,
    Progress, RunFinished, RunStarted,
)
from homelab.model import Change, Health, Monitor
from homelab.tui.present import apply_progress, health_counts, layer_health_word, pair_matrix, plan_counts
from homelab.tui.view_state import (
    MAX_HOST_LINES, CancelRequested, LayersKnown, RunCrashed, RunView, reduce, reduce_all,
)
from tests.tui import recorded


def test_catalog_orders_layers_by_number_before_any_run() -> None:
    view = reduce(RunView(), LayersKnown(recorded.LAYERS))
    assert [lv.name for lv in view.layers] == ["billing", "privilege", "mesh", "permissions", "compute"]
    assert [lv.number for lv in view.layers] == [-1, 0, 1, 2, 3]
    assert all(lv.health is Health.UNKNOWN for lv in view.layers)


def test_status_run_fills_monitors_per_layer() -> None:
    view = reduce_all(RunView(), [LayersKnown(recorded.LAYERS), *recorded.status_events()])
    assert view.ok and not view.running
    mesh = view.layer("mesh")
    assert mesh is not None and mesh.health is Health.FAIL
    assert health_counts(mesh.monitors) == "1 FAIL, 2 OK"
    assert layer_health_word(view.layer("compute")) == "WARN"  # type: ignore[arg-type]
    assert view.checked_at == recorded.T + 1


def test_new_status_run_keeps_old_monitors_until_fresh_ones_arrive() -> None:
    view = reduce_all(RunView(), recorded.status_events())
    again = recorded.status_events(recorded.all_ok_monitors())
    mid = reduce_all(view, again[:5])  # RunStarted + connects + first layer started
    assert mid.running and mid.runs == 2
    assert mid.layer("mesh").health is Health.FAIL  # type: ignore[union-attr]
    done = reduce_all(mid, again[5:])
    assert done.layer("mesh").health is Health.OK  # type: ignore[union-attr]
    assert done.checked_at == recorded.T + 61


def test_layer_unknown_to_catalog_still_gets_a_pane() -> None:
    view = reduce_all(RunView(), [RunStarted("status", ("storage",), ()), LayerStarted("storage", 4, "storage"),
                                  LayerStatus("storage", ()), LayerFinished("storage", 0, 0, "nothing configured")])
    lv = view.layer("storage")
    assert lv is not None and lv.number == 4 and lv.state == "skipped"
    assert layer_health_word(lv) == "OFF"


def test_plan_counts_per_layer() -> None:
    view = reduce_all(RunView(), [LayersKnown(recorded.LAYERS), *recorded.plan_events()])
    assert view.planned == 10
    assert {lv.name: lv.planned for lv in view.layers} == {
        "billing": 0, "privilege": 0, "mesh": 3, "permissions": 3, "compute": 4}
    assert plan_counts(view.layer("compute")) == "4 changes"  # type: ignore[arg-type]
    assert plan_counts(view.layer("billing")) == "no changes (1 checked)"  # type: ignore[arg-type]


def test_apply_progress_hosts_and_failures() -> None:
    events = recorded.apply_events(fail_h3=True)
    view = reduce_all(RunView(), [LayersKnown(recorded.LAYERS), *events])
    assert not view.running and not view.ok
    assert apply_progress(view.layer("compute")) == "done 4/4"  # type: ignore[arg-type]
    assert apply_progress(view.layer("mesh")) == "FAILED 1, done 2/3"  # type: ignore[arg-type]
    h3 = view.host("h3")
    assert h3 is not None and h3.state == "failed" and h3.error == "wg-quick@wg0 failed to start"
    assert view.host("h1").state == "changed"  # type: ignore[union-attr]
    # every failure keeps its error and hint, and is in the log in words
    assert [f.subject for f in view.failures] == ["h3", "h3", "h3"]
    assert all(f.hint for f in view.failures)
    assert any(line.startswith("FAILED h3: WireGuard wg0") for line in view.log)
    assert "  hint: see the run log; the next apply retries it" in view.log


def test_apply_progress_mid_run() -> None:
    events = recorded.apply_events()
    cut = next(i for i, e in enumerate(events) if isinstance(e, ChangeApplied)) + 1
    view = reduce_all(RunView(), [LayersKnown(recorded.LAYERS), *events[:cut]])
    assert view.running and view.current_layer == "compute"
    assert apply_progress(view.layer("compute")) == "applying 1/4"  # type: ignore[arg-type]
    assert apply_progress(view.layer("mesh")) == "waiting"  # type: ignore[arg-type]


def test_host_output_is_bounded_and_counted() -> None:
    view = reduce_all(RunView(), recorded.output_flood(MAX_HOST_LINES + 50))
    h1 = view.host("h1")
    assert h1 is not None and len(h1.output) == MAX_HOST_LINES and h1.last_line == f"line {MAX_HOST_LINES + 49}"
    assert view.log_count >= MAX_HOST_LINES + 50


def test_cancel_then_finish() -> None:
    view = reduce_all(RunView(), [RunStarted("apply", ("compute",), ("h1",)), CancelRequested()])
    assert view.cancelling
    view = reduce(view, RunFinished("apply", False, 0, message="cancelled"))
    assert not view.running and not view.cancelling and not view.ok


def test_crash_is_a_failure_with_hint() -> None:
    view = reduce_all(RunView(), [RunStarted("plan", (), ()), RunCrashed("state is locked by pid 7", "wait")])
    assert not view.running and view.crashed is not None and view.failures[-1].hint == "wait"


def test_unknown_event_is_ignored() -> None:
    view = RunView()
    assert reduce(view, object()) is view  # type: ignore[arg-type]


def test_change_failed_without_host_counts_on_layer() -> None:
    change = Change("billing", "billing", "run", "blocked")
    view = reduce_all(RunView(), [ChangeFailed(change, "over budget: €30 > €20", "raise the budget"),
                                  LayerFinished("billing", 0, 1)])
    lv = view.layer("billing")
    assert lv is not None and lv.failed == 1 and lv.state == "failed"


def test_host_failed_on_connect_is_unreachable() -> None:
    view = reduce(RunView(), HostFailed("h9", "connect", "connection refused", "is sshd running?"))
    assert view.host("h9").state == "unreachable"  # type: ignore[union-attr]


def test_output_after_failure_keeps_failed_state() -> None:
    view = reduce_all(RunView(), [HostFailed("h1", "mesh", "boom"), HostOutput("h1", "mesh", "more")])
    assert view.host("h1").state == "failed"  # type: ignore[union-attr]


def test_pair_matrix_symmetric_and_directed() -> None:
    ms = [Monitor("mesh", "a<->b", "handshake", Health.OK, ""), Monitor("mesh", "a->c", "ping", Health.FAIL, ""),
          Monitor("mesh", "a<->b", "ping", Health.WARN, ""), Monitor("mesh", "a", "wg", Health.OK, "")]
    m = pair_matrix(ms)
    assert m is not None and m.nodes == ("a", "b", "c")
    assert m.cell("a", "b") == m.cell("b", "a") == "WARN"  # worst of the pair's monitors
    assert m.cell("a", "c") == "FAIL" and m.cell("c", "a") == "·" and m.cell("a", "a") == "—"
    assert pair_matrix([Monitor("compute", "h1", "x", Health.OK, "")]) is None


def test_frozen_views() -> None:
    view = reduce(RunView(), LayersKnown(recorded.LAYERS))
    try:
        view.layers[0].state = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        return
    raise AssertionError("LayerView must be frozen")


def test_waiting_for_a_booting_server_is_shown_as_it_goes() -> None:
    # the engine's Progress events from compute's wait (layers/compute/boot.py), as the CLI prints them
    events = [Progress("compute", f"web-3: server initializing, waiting ({s} s of 60 s)") for s in (0, 10)]
    view = reduce_all(RunView(), [*recorded.apply_events()[:3], *events])
    assert view.progress == "web-3: server initializing, waiting (10 s of 60 s)"
    assert [line for line in view.log if "web-3" in line] == [
        "... web-3: server initializing, waiting (0 s of 60 s)", "... web-3: server initializing, waiting (10 s of 60 s)"]


def test_a_host_waited_for_shows_no_answer_until_it_connects_or_fails() -> None:
    wait = Progress("connect", "h2 does not answer; homelab reached it before, so it may be rebooting: "
                               "trying again for up to 120 s", host="h2")
    start = RunStarted("apply", ("compute",), ("h1", "h2"))
    view = reduce_all(RunView(), [start, wait])
    h2 = view.host("h2")
    assert h2 is not None and h2.state == "no answer" and h2.last_line == wait.message
    assert view.host("h1").state == "waiting"  # type: ignore[union-attr]
    assert view.log[-1] == f"... {wait.message}"
    back = reduce(view, HostConnected("h2", "ops@10.0.0.3:22, 31.20 s"))
    assert back.host("h2").state == "connected"  # type: ignore[union-attr]
    gone = reduce(view, HostFailed("h2", "connect", "connect to h2: timed out (no answer for 121 s)"))
    assert gone.host("h2").state == "unreachable"  # type: ignore[union-attr]
