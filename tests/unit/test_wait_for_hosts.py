"""A machine homelab met before that takes no connection now is most often rebooting
(unattended upgrades) or just switched on: apply keeps trying it for --wait-for-hosts seconds,
saying so, before it calls it unreachable; plan, status and destroy report it at once, as
does a machine never met (nothing says it will come back). The engine runs on the fake transport."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from homelab import cli
from homelab.engine import Engine
from homelab.errors import HostDown
from homelab.events import ChangeApplied, HostConnected, HostFailed, Progress, RunFinished
from homelab.hosts import WAIT_FOR_HOSTS_S, HostTarget
from homelab.layers.base import RunOptions
from test_contract import Counter, _engine


def down(target: HostTarget) -> HostDown:
    return HostDown(f"connect to {target.name} ({target.address}:22): Connection refused", "is it on?")


def _met_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One plan with both hosts answering: their host keys are pinned in state."""
    engine, _ = _engine(tmp_path, monkeypatch, Counter(tmp_path))
    assert [e.host for e in engine.plan() if isinstance(e, HostConnected)].count("b") == 1


def _waiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answers_after: int | None,
             wait: float) -> tuple[Engine, Any]:
    """b refuses its first `answers_after` connects (None: every one)."""
    monkeypatch.setattr("homelab.engine.WAIT_STEP_S", 0.02)
    tries = {"b": 0}

    def refuse(target: HostTarget) -> HostDown | None:
        if target.name != "b":
            return None
        tries["b"] += 1
        return down(target) if answers_after is None or tries["b"] <= answers_after else None

    engine, transport = _engine(tmp_path, monkeypatch, Counter(tmp_path), refuse=refuse)
    engine.options = RunOptions(yes=True, wait_for_hosts=wait)
    return engine, transport


def test_apply_waits_for_a_known_host_that_reboots_and_converges_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _met_before(tmp_path, monkeypatch)
    engine, transport = _waiting(tmp_path, monkeypatch, answers_after=3, wait=30)
    events = list(engine.apply())
    said = [(e.host, e.message) for e in events if isinstance(e, Progress) and e.layer == "connect"]
    assert said == [("b", "b does not answer; homelab reached it before, so it may be rebooting: "
                          "trying again for up to 30 s")]
    assert [e.host for e in events if isinstance(e, HostConnected)] == ["a", "b"]  # a did not wait for b
    assert sorted(e.change.target for e in events if isinstance(e, ChangeApplied)) == ["a", "b"]
    assert [e for e in events if isinstance(e, RunFinished)][0].ok
    assert [name for name, _, _ in transport.logins].count("b") == 4
    assert (tmp_path / "b").read_text() == "1"


def test_a_known_host_that_stays_down_is_unreachable_after_the_wait(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _met_before(tmp_path, monkeypatch)
    engine, transport = _waiting(tmp_path, monkeypatch, answers_after=None, wait=0.3)
    t0 = time.monotonic()
    events = list(engine.apply())
    assert 0.3 <= time.monotonic() - t0 < 5
    failed = [e for e in events if isinstance(e, HostFailed)]
    assert [(e.host, e.layer) for e in failed] == [("b", "connect")]
    assert failed[0].error.startswith("connect to b (127.0.0.1:22): Connection refused (no answer for 0 s)")
    assert failed[0].hint == "is it on?"
    assert [e.change.target for e in events if isinstance(e, ChangeApplied)] == ["a"]  # a converges anyway
    assert not [e for e in events if isinstance(e, RunFinished)][0].ok
    assert [name for name, _, _ in transport.logins].count("b") > 2  # it was tried again


def test_a_host_never_met_and_runs_without_a_wait_report_it_at_once(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine, transport = _waiting(tmp_path, monkeypatch, answers_after=None, wait=30)  # no key pinned yet
    t0 = time.monotonic()
    events = list(engine.apply())
    assert time.monotonic() - t0 < 5
    assert not [e for e in events if isinstance(e, Progress) and e.layer == "connect"]
    assert [e.host for e in events if isinstance(e, HostFailed)] == ["b"]
    assert [name for name, _, _ in transport.logins].count("b") == 1
    _met_before(tmp_path, monkeypatch)
    engine, transport = _waiting(tmp_path, monkeypatch, answers_after=None, wait=0)  # plan, status: 0
    assert [e.host for e in engine.plan() if isinstance(e, HostFailed)] == ["b"]
    assert [name for name, _, _ in transport.logins].count("b") == 1


def test_a_cancel_ends_the_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _met_before(tmp_path, monkeypatch)
    engine, _ = _waiting(tmp_path, monkeypatch, answers_after=None, wait=600)
    monkeypatch.setattr("homelab.engine.WAIT_STEP_S", 1.0)
    t0 = time.monotonic()
    events = []
    for event in engine.apply():
        events.append(event)
        if isinstance(event, Progress) and event.layer == "connect":
            threading.Timer(0.2, engine.cancel).start()
    assert time.monotonic() - t0 < 5
    finished = [e for e in events if isinstance(e, RunFinished)][0]
    assert finished.cancelled and not finished.ok


@pytest.mark.parametrize("argv, wait", [
    (["apply", "c.yaml"], WAIT_FOR_HOSTS_S),
    (["apply", "c.yaml", "--wait-for-hosts", "0"], 0.0),
    (["apply", "c.yaml", "--wait-for-hosts", "45"], 45.0),
    (["destroy", "c.yaml"], 0.0),
    (["plan", "c.yaml"], 0.0),
    (["status", "c.yaml"], 0.0),
])
def test_apply_waits_by_default_plan_status_and_destroy_never(argv: list[str], wait: float) -> None:
    args = cli.build_parser(argv[0]).parse_args(argv)
    assert cli._options(args, interactive=False).wait_for_hosts == wait


def test_a_wait_that_is_no_number_of_seconds_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser("apply").parse_args(["apply", "c.yaml", "--wait-for-hosts", "soon"])
    assert exc.value.code == 2
    assert "should be seconds 0-3600, not 'soon'" in capsys.readouterr().err
