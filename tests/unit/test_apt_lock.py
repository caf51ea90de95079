"""The apt-lock wait's pure parts (homelab.provision.apt_lock), and its probe run for real on
this machine against locks this test takes: a POSIX lock (what apt and dpkg take) and a flock(2)."""
from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from homelab.provision.apt_lock import (
    APT_GET, DEFAULT_TIMEOUT, ENV_TIMEOUT, Holder, parse_holders, render_holders_probe, render_timeout_error,
    render_waiting, timeout_from_env, uses_apt, with_lock_timeout)


def run_probe(*paths: Path) -> str:
    return subprocess.run(["sh", "-c", render_holders_probe(tuple(str(p) for p in paths))], capture_output=True,
                          text=True, check=True, timeout=30).stdout


def hold(path: Path, how: str) -> subprocess.Popen[str]:
    """A child that holds `path` locked (lockf: POSIX, flock: BSD) until killed; ready when it says so."""
    code = (f"import fcntl,sys,time; f=open({str(path)!r},'w'); fcntl.{how}(f, fcntl.LOCK_EX); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_the_probe_names_the_holder_of_a_posix_and_of_a_flock_lock(tmp_path: Path) -> None:
    posix, bsd, free = tmp_path / "lock-frontend", tmp_path / "lock", tmp_path / "free"
    free.touch()
    holders = [hold(posix, "lockf"), hold(bsd, "flock")]
    try:
        found = parse_holders(run_probe(posix, bsd, free, tmp_path / "missing"))
        comm = [Path(f"/proc/{p.pid}/comm").read_text().strip() for p in holders]
        assert comm[0].startswith("python")
        assert found == (Holder(str(posix), holders[0].pid, comm[0]), Holder(str(bsd), holders[1].pid, comm[1]))
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
    assert run_probe(posix, bsd, free) == ""  # released: nothing held


def test_a_lock_on_another_file_with_the_same_name_elsewhere_is_not_seen(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    other = tmp_path / "a" / "lock"
    mine = tmp_path / "lock"
    mine.touch()
    proc = hold(other, "lockf")
    try:
        assert run_probe(mine) == ""
    finally:
        proc.kill()
        proc.wait()


def test_parse_holders_keeps_the_first_holder_per_file_and_skips_noise() -> None:
    out = ("held /var/lib/dpkg/lock-frontend 812 unattended-upgr\n"
           "held /var/lib/dpkg/lock-frontend 813 apt-get\n"
           "held /var/lib/dpkg/lock -1 \n"
           "garbage\nheld /x notapid sh\n")
    assert parse_holders(out) == (Holder("/var/lib/dpkg/lock-frontend", 812, "unattended-upgr"),
                                  Holder("/var/lib/dpkg/lock", -1, ""))


def test_the_messages_name_the_holder_the_wait_and_what_to_do() -> None:
    holders = (Holder("/var/lib/dpkg/lock-frontend", 812, "unattended-upgr"),)
    assert render_waiting("h1", holders, 30.4, 120) == (
        "h1: waiting for the apt lock /var/lib/dpkg/lock-frontend held by PID 812 (unattended-upgr) 30s/120s")
    message, hint = render_timeout_error("h1", holders, 120)
    assert message == ("apt lock on h1 still held after 120 s: /var/lib/dpkg/lock-frontend held by PID 812 "
                       "(unattended-upgr)")
    assert "ps -o pid,etime,args -p 812" in hint and ENV_TIMEOUT in hint and "apply again" in hint
    _, hint = render_timeout_error("h1", (Holder("/var/lib/dpkg/lock", -1, ""),), 5)
    assert "lsof /var/lib/dpkg/lock" in hint


def test_the_timeout_comes_from_the_environment_with_a_sane_default() -> None:
    assert timeout_from_env({}) == DEFAULT_TIMEOUT == 120
    assert timeout_from_env({ENV_TIMEOUT: "7"}) == 7
    assert timeout_from_env({ENV_TIMEOUT: "0"}) == 0
    assert timeout_from_env({ENV_TIMEOUT: "-3"}) == DEFAULT_TIMEOUT
    assert timeout_from_env({ENV_TIMEOUT: "soon"}) == DEFAULT_TIMEOUT


def test_which_operations_use_apt() -> None:
    assert uses_apt("apt.packages", {"packages": ["jq"]}) and uses_apt("apt.update", {})
    assert uses_apt("server.shell", {"commands": [f"{APT_GET} install -y jq"]})
    assert uses_apt("server.shell", {"commands": "dpkg -i /tmp/x.deb"})
    assert not uses_apt("server.shell", {"commands": ["dpkg-query -W jq"]})
    assert not uses_apt("files.put_text", {"content": "apt-get install", "dest": "/etc/x"})


def test_apt_commands_get_the_lock_timeout() -> None:
    kw = with_lock_timeout("apt.packages", {"packages": ["jq"], "extra_install_args": "--no-install-recommends"}, 9)
    assert kw["extra_install_args"] == "--no-install-recommends -o DPkg::Lock::Timeout=9"
    assert kw["extra_uninstall_args"] == "-o DPkg::Lock::Timeout=9"
    shell = with_lock_timeout("server.shell", {"commands": ["x"], "_env": {"A": "1"}}, 9)
    assert shell["_env"] == {"A": "1", ENV_TIMEOUT: "9"}
    assert with_lock_timeout("apt.update", {"cache_time": 3600}, 9) == {"cache_time": 3600}
    assert APT_GET == 'apt-get -o DPkg::Lock::Timeout="${HOMELAB_APT_LOCK_TIMEOUT:-120}"'
