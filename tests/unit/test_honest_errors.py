"""Errors that name the likely cause (issue 12): an API that is not there is not "busy" (a
refused connection fails at once, no retries); an sshd that drops this address before its
greeting is most likely OpenSSH's per-source penalty, not "is sshd running?"."""
from __future__ import annotations

import socket
import threading

import pytest
import requests

from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.providers.retry import not_there
from homelab.ssh import Connection
from test_hcloud_retry import FakeTime, api, failing


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_fails_at_once_not_after_retries() -> None:
    t = FakeTime()
    port = closed_port()
    with pytest.raises(HomelabError) as err:
        api(t).call("list servers", lambda: requests.get(f"http://127.0.0.1:{port}/v1/servers", timeout=5))
    assert "connection refused: nothing listens there" in err.value.message
    assert "busy" not in err.value.message + err.value.hint and t.sleeps == []


def test_no_answer_in_time_is_still_retried() -> None:
    t = FakeTime()
    fn = failing(2, requests.Timeout("read timed out"))
    assert api(t).call("list servers", fn) == "ok" and len(t.sleeps) == 2


def test_not_there_reads_through_the_wrapping() -> None:
    inner = ConnectionRefusedError(111, "Connection refused")
    outer = requests.ConnectionError("Max retries exceeded")
    outer.__cause__ = inner
    assert not_there(outer).startswith("connection refused")
    assert not_there(requests.ConnectionError(socket.gaierror(-2, "Name or service not known"))) == \
        "the name does not resolve"
    assert not_there(requests.ConnectionError("Connection aborted")) == ""


def test_sshd_that_drops_us_before_its_greeting_is_named_as_a_penalty() -> None:
    """What OpenSSH 9.8+ does to a penalised source: accept, then close without a banner."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drop() -> None:
        conn, _ = server.accept()
        conn.close()

    threading.Thread(target=drop, daemon=True).start()
    target = HostTarget("h1", "127.0.0.1", port=server.getsockname()[1])
    try:
        with pytest.raises(HomelabError) as err:
            Connection.open(target, None, None, use_agent=False, timeout=5)
    finally:
        server.close()
    assert "PerSourcePenalties" in err.value.hint and "penalty" in err.value.hint
    assert "check that sshd runs there" not in err.value.hint


def test_a_cut_connection_fails_its_host_not_the_whole_worker() -> None:
    """The worker turns paramiko's EOFError (a connection cut mid-command) into the SSHException
    pyinfra handles per host. Run in a child: importing the worker monkey-patches (gevent)."""
    import subprocess
    import sys

    code = """
import paramiko
from homelab.provision.worker import SSHConnector, as_lost_connection
def cut(*a, **k):
    raise EOFError()
try:
    as_lost_connection(cut)()
except paramiko.SSHException as exc:
    print("SSHException:", exc)
assert getattr(SSHConnector.run_shell_command, "__name__") == "wrapped"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "SSHException: the SSH connection was lost (EOFError)"


def test_a_machine_met_before_that_does_not_answer_may_be_rebooting() -> None:
    """A closed port: the hint for a pinned host says it may be rebooting, else check the config."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
    target = HostTarget("h1", "127.0.0.1", port=closed.getsockname()[1])
    try:
        for pinned, says in (("ssh-ed25519 AAAA", "rebooting"), (None, "check address and port")):
            with pytest.raises(HomelabError) as err:
                Connection.open(target, pinned, None, use_agent=False, timeout=5)
            assert "refused" in err.value.message.lower()
            assert says in err.value.hint
    finally:
        closed.close()
