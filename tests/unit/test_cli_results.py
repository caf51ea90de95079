"""Honest results: one meaning per exit code, `status --json` ok, closed pipes, no TUI without
a terminal, bounded --parallel, unwritable directories give clean errors, run logs rotate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab import cli
from homelab.events import LayerPlanned, LayerStatus, RunFinished, RunStarted
from homelab.model import Change, Health, LayerPlan, Monitor
from homelab.runlog import KEEP_LOGS, rotate_logs, start_run_log, stop_run_log

HOMELAB = [sys.executable, "-m", "homelab"]
CONFIG = "compute:\n  machines:\n    - {name: h1, address: 127.0.0.1, port: 9}\n"  # port 9: nobody listens


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HOMELAB, *args], capture_output=True, text=True, env=dict(os.environ, **(env or {})),
                          timeout=timeout, **kw)


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return path


class StandInEngine:
    """Stands in for homelab.engine.Engine: replays fixed events, touches no host."""

    events: list[Any] = []

    def __init__(self, *args: Any) -> None:
        pass

    def _replay(self) -> Iterator[Any]:
        yield from self.events

    plan = status = apply = _replay


def use_events(monkeypatch: pytest.MonkeyPatch, *events: Any) -> None:
    monkeypatch.setattr("homelab.engine.Engine", StandInEngine)
    monkeypatch.setattr(StandInEngine, "events", list(events))


CHANGE = Change("compute", "h1", "update", "set hostname h1")


# ------------------------------------------------------------ exit codes -----
def test_help_documents_every_exit_code() -> None:
    out = run("--help")
    assert out.returncode == 0
    assert out.stdout.endswith(
        "exit codes:\n"
        "  0    done, or nothing to do (plan: no changes)\n"
        "  1    failed: a host, a change or the plan failed; status: a monitor FAILs\n"
        "  2    bad config or command line; nothing was touched\n"
        "  3    plan: changes pending (apply would change something)\n"
        "  130  interrupted (Ctrl-C)\n")
    assert "exit codes:" in run("plan", "--help").stdout


def test_readme_documents_the_same_exit_codes() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = [line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| ") and
             line.split("|")[1].strip().isdigit()]
    codes = [line.split()[0] for line in cli.EXIT_CODES.splitlines()[1:]]
    assert table == codes == ["0", "1", "2", "3", "130"]


@pytest.mark.parametrize("plans,code", [
    ((LayerPlan("compute", changes=(CHANGE,)),), 3),
    ((LayerPlan("compute", unchanged=("h1: hostname is h1",)),), 0),
    ((LayerPlan("billing", blocked=("over budget",)), LayerPlan("compute", changes=(CHANGE,))), 1),
])
def test_plan_changes_pending_is_3_not_the_bad_config_code(config: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str],
                                                          plans: tuple[LayerPlan, ...], code: int) -> None:
    use_events(monkeypatch, RunStarted("plan", ("compute",), ("h1",)),
               *(LayerPlanned(p.layer, p) for p in plans), RunFinished("plan", True, 0))
    assert cli.main(["plan", str(config)]) == code
    assert cli.main(["plan", str(config.with_name("missing.yaml"))]) == 2  # bad input keeps 2


def test_plan_that_could_not_finish_is_1(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_events(monkeypatch, RunStarted("plan", ("compute",), ("h1",)),
               LayerPlanned("compute", LayerPlan("compute", changes=(CHANGE,))), RunFinished("plan", False, 0))
    assert cli.main(["plan", str(config)]) == 1


# ------------------------------------------------------------ status --json --
def test_status_json_is_not_ok_when_a_monitor_fails(config: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fail = Monitor("compute", "h1", "reachable", Health.FAIL, "connection refused")
    ok = Monitor("compute", "h2", "reachable", Health.OK, "0.1 s")
    use_events(monkeypatch, LayerStatus("compute", (ok, fail)), RunFinished("status", True, 0))
    assert cli.main(["status", str(config), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [m["health"] for m in doc["layers"]["compute"]] == ["OK", "FAIL"]
    use_events(monkeypatch, LayerStatus("compute", (ok,)), RunFinished("status", True, 0))
    assert cli.main(["status", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


# ------------------------------------------------------------ closed pipes ---
@pytest.mark.parametrize("args,code", [(["validate"], 0), (["status", "--json"], 1), (["plan"], 1), (["--help"], 0)])
def test_a_reader_that_leaves_is_not_an_error(config: Path, args: list[str], code: int) -> None:
    argv = [*HOMELAB, args[0], str(config), *args[1:]] if args[0] != "--help" else [*HOMELAB, *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head -0`: nobody reads what comes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == code, err  # the command's own result, not "a bug"
    assert "BrokenPipe" not in err and "bug" not in err and "Exception ignored" not in err


def test_head_sees_the_start_of_the_output(config: Path) -> None:
    shell = f"{sys.executable} -m homelab validate {config} | head -c 5; echo \" rc=${{PIPESTATUS[0]}}\""
    out = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert out.stdout == f"{str(config)[:5]} rc=0\n" and out.stderr == ""


# ------------------------------------------------------------ TUI, --parallel
def test_no_terminal_no_tui() -> None:
    t0 = time.monotonic()
    out = run(stdin=subprocess.DEVNULL)
    assert time.monotonic() - t0 < 30
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.endswith("error: the TUI needs a terminal, and this is not one\n"
                               "hint: run a command instead, e.g. homelab validate config.yaml (see homelab --help)\n")
    assert run("tui", stdin=subprocess.DEVNULL).returncode == 2


@pytest.mark.parametrize("value", ["0", "65", "-1", "many", "100000000000"])
def test_parallel_is_bounded(config: Path, value: str) -> None:
    out = run("plan", str(config), "--parallel", value)
    assert out.returncode == 2
    assert f"argument --parallel: should be a number 1-{cli.MAX_PARALLEL}, not {value!r}" in out.stderr


def test_parallel_in_bounds_is_taken() -> None:
    args = cli.build_parser().parse_args(["plan", "c.yaml", "--parallel", str(cli.MAX_PARALLEL)])
    assert args.parallel == cli.MAX_PARALLEL
    assert cli.build_parser().parse_args(["apply", "c.yaml"]).parallel == 10


# ------------------------------------------------------------ directories ----
def test_unwritable_log_dir_is_a_warning_not_a_traceback(config: Path) -> None:
    for env in ({"XDG_STATE_HOME": "/dev/null/state"}, {"XDG_STATE_HOME": "", "HOME": "/dev/null"}):
        out = run("validate", str(config), env=env)
        assert out.returncode == 0, out.stderr
        assert out.stderr.startswith("warning: running without a run log: cannot write /dev/null/")
        assert out.stderr.endswith("(Not a directory); set XDG_STATE_HOME to a writable directory\n")
        assert out.stdout.startswith(f"{config}: valid")


def test_unwritable_state_dir_is_a_clean_error(config: Path) -> None:
    lock = config.with_name("c.state.lock")
    lock.mkdir()  # the lock cannot be opened (even by root): stands in for a read-only directory
    out = run("forget-host", str(config), "h1")
    assert out.returncode == 1
    assert out.stderr.startswith(f"error: Is a directory: {lock}\n"
                                 "hint: check that this path exists, is yours to write, and that its disk has room\n"
                                 "log: ")
    assert "Traceback" not in out.stderr and "bug" not in out.stderr


# ------------------------------------------------------------ run logs -------
def test_run_logs_are_rotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    d = tmp_path / "homelab" / "logs"
    d.mkdir(parents=True)
    old = [d / f"2020010{i // 100}-{i % 100:06d}-1-plan.log" for i in range(KEEP_LOGS + 20)]
    for p in old:
        p.write_text("x")
    (d / "notes.txt").write_text("not a log: kept")
    path, handler, why = start_run_log("status")
    assert why == "" and path is not None and handler is not None
    stop_run_log(handler)
    logs = sorted(d.glob("*.log"))
    assert len(logs) == KEEP_LOGS and path in logs
    assert logs[:-1] == old[-(KEEP_LOGS - 1):]  # the newest kept, the oldest gone
    assert (d / "notes.txt").exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert rotate_logs(d, KEEP_LOGS) == []


def test_validate_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    out = run("validate", str(fifo), timeout=5)  # today: blocks in open() until the timeout
    assert out.returncode == 2 and f"{fifo}: is a named pipe (FIFO), not a regular file" in out.stderr
