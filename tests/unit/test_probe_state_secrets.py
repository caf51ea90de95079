"""Batched probes, atomic state, lock, secrets that never print."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from homelab.errors import LockedError
from homelab.probe import parse_probe_output, render_probe_script
from homelab.secrets import Secret, SecretRef
from homelab.state import RunLock, State


def test_probe_script_round_trip_with_real_shell() -> None:
    script, nonce = render_probe_script({"a": "echo one; echo two", "b": "printf 'no newline'", "c": "exit 3",
                                         "d": "echo err >&2"})
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    res = parse_probe_output(out, nonce)
    assert res["a"].out == "one\ntwo" and res["a"].rc == 0
    assert res["b"].out == "no newline"
    assert res["c"].rc == 3 and res["c"].out == ""
    assert res["d"].out == "err"


def test_probe_keys_are_checked() -> None:
    with pytest.raises(ValueError):
        render_probe_script({"bad key; rm": "true"})


def test_state_atomic_write_mode_and_previous_kept(tmp_path: Path) -> None:
    path = tmp_path / "c.state.json"
    s = State.load(path)
    s.update_host("h1", host_key="ssh-ed25519 AAAA")
    s.save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    s.section("mesh")["x"] = 1
    s.save()
    prev = json.loads((tmp_path / "c.state.json.prev").read_text())
    assert prev["hosts"]["h1"]["host_key"] == "ssh-ed25519 AAAA" and "mesh" not in prev["sections"]
    again = State.load(path)
    assert again.section("mesh") == {"x": 1} and again.data["version"] == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_state_bad_version_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.state.json"
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(Exception, match="version 99"):
        State.load(path)


def test_second_run_is_refused_naming_holder(tmp_path: Path) -> None:
    path = tmp_path / "c.state.json"
    first = RunLock(path)
    first.acquire("apply")
    # a separate process tries (flock is per open file description, so a subprocess is the real test)
    code = ("import sys; from pathlib import Path; from homelab.state import RunLock\n"
            f"RunLock(Path({str(path)!r})).acquire('apply')")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "another homelab run holds" in out.stderr and f"pid {os.getpid()}" in out.stderr
    first.release()
    second = RunLock(path)
    second.acquire("apply")
    second.release()
    with pytest.raises(LockedError):
        a, b = RunLock(path), RunLock(path)
        a.acquire("x")
        try:
            b.acquire("y")
        finally:
            a.release()


def test_secret_never_prints() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in f"{s} {s!r} {[s]} {dict(a=s)}"
    assert s.reveal() == "hunter2"
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(s)


def test_secret_ref_env_and_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HL_T", "tok")
    assert SecretRef(env="HL_T").resolve().reveal() == "tok"
    assert SecretRef(command="printf 'abc\\nrest'").resolve().reveal() == "abc"
    monkeypatch.delenv("HL_T")
    with pytest.raises(Exception, match="HL_T"):
        SecretRef(env="HL_T").resolve()


def test_probe_groups_run_side_by_side_in_order_within_a_group() -> None:
    groups = [{"a1": "sleep 0.4; echo a1", "a2": "cat /tmp/hl-probe-order 2>/dev/null; echo a2"},
              {"b1": "sleep 0.4; echo b1"}, {"c1": "sleep 0.4; exit 4"}]
    script, nonce = render_probe_script(groups)
    import time
    t0 = time.monotonic()
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    elapsed = time.monotonic() - t0
    res = parse_probe_output(out, nonce)
    assert list(res) == ["a1", "a2", "b1", "c1"]
    assert res["a1"].out == "a1" and res["a2"].out == "a2" and res["b1"].out == "b1"
    assert res["c1"].rc == 4
    assert elapsed < 1.0, f"groups should run at the same time, took {elapsed:.2f} s"


def test_events_are_redacted_deeply_and_health_stays_an_enum() -> None:
    from homelab.engine import redact_event
    from homelab.events import ChangeFailed, LayerStatus
    from homelab.model import Change, Health, Monitor

    s = Secret("tok-123")
    ev = ChangeFailed(Change("privilege", "x", "run", "upload with tok-123", detail=("a tok-123",)), "bad tok-123")
    out = redact_event(ev, [s])
    assert "tok-123" not in repr(out) and out.change.detail == ("a [REDACTED]",)
    status = redact_event(LayerStatus("p", (Monitor("p", "h", "n", Health.OK, "tok-123"),)), [s])
    assert status.monitors[0].health is Health.OK and status.monitors[0].reason == "[REDACTED]"
    assert redact_event(ev, []) is ev


def test_quick_reads_share_one_budget_and_a_hang_ends_only_its_group() -> None:
    """Quick reads (the default timeout) run as plain subshells under the script's one
    `timeout` (the longest group's budget); one that hangs ends there: it and the reads after
    it are timed out, the reads before it and every other group report."""
    from homelab.probe import Probe, script_budget

    groups = [{"a": "echo a", "b": "echo b0; sleep 20", "c": "echo c"},
              {"x": Probe("sleep 0.2; echo x", timeout=2), "y": "echo y"}]
    script, nonce = render_probe_script(groups, shared=1)
    assert script_budget(groups, shared=1) == 3  # 1 s of quick reads + x's own 2 s
    assert script.count("timeout ") == 2  # one for the script, one for the probe with its own limit
    import time
    t0 = time.monotonic()
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    elapsed = time.monotonic() - t0
    res = parse_probe_output(out, nonce, groups)
    assert res["a"].out == "a" and res["a"].ok
    assert res["b"].timed_out and res["b"].out.strip() == "b0"  # what it printed before it hung
    assert res["c"].timed_out and res["c"].out == ""  # never started
    assert res["x"].out == "x" and res["y"].out == "y" and res["y"].ok
    assert elapsed < 5, f"the hang should end at the script's budget, took {elapsed:.1f} s"


def test_a_probe_cannot_read_the_scripts_own_variables() -> None:
    script, nonce = render_probe_script({"a": 'echo "d=$d"'})
    out = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    assert parse_probe_output(out, nonce)["a"].out == "d="
