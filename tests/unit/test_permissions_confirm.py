"""The controller's half of a guarded change, with a fake host, clock and connections."""
from __future__ import annotations

from typing import Any

import pytest

from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.provision.confirm import arm_and_confirm, confirm_new_login
from homelab.ssh import CommandResult

SPEC = {"host": "h1", "address": "10.0.0.11", "port": 22, "users": ["alice"], "fallback": ["alice", "admin"],
        "fallback_port": 22, "key_path": "/k", "use_agent": False, "host_key": "ssh-ed25519 AAAA", "kind": "nft",
        "token": "0123456789abcdef", "window": 30}


class FakeHost:
    """Logins fail until `opens_at` (seconds); the guard answers confirm/status."""

    def __init__(self, opens_at: float = 0.0, revert_at: float | None = None, rc: int = 0) -> None:
        self.now = 0.0
        self.opens_at = opens_at
        self.revert_at = revert_at
        self.rc = rc
        self.logins: list[tuple[str, int]] = []
        self.scripts: list[str] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s

    def opener(self, target: HostTarget, host_key: str, use_agent: bool, timeout: float) -> Any:
        self.logins.append((target.user, target.port))
        assert host_key == "ssh-ed25519 AAAA" and target.key_path == "/k"
        reverted = self.revert_at is not None and self.now >= self.revert_at
        if self.now < self.opens_at and not reverted:
            self.now += 1
            raise HomelabError("connect to h1 (10.0.0.11:22): timed out")
        host = self

        class Conn:
            def run_script(self, script: str, timeout: float = 0) -> CommandResult:
                host.scripts.append(script.strip())
                if " status " in script:
                    return CommandResult(0, f"reverted {SPEC['token']}\n" if reverted else "pending x\n", "")
                return CommandResult(host.rc, "", "homelab-guard: nft: change was already undone\n" if host.rc else "")

            def close(self) -> None:
                pass

        return Conn()


def test_confirms_at_the_first_new_login() -> None:
    host = FakeHost()
    out = confirm_new_login(SPEC, host.opener, host.clock, host.sleep)
    assert out == "h1: firewall change confirmed by a new login as alice"
    assert host.scripts == ["exec /usr/local/sbin/homelab-guard confirm nft 0123456789abcdef"]
    assert host.logins == [("alice", 22)]


def test_keeps_trying_within_the_window() -> None:
    host = FakeHost(opens_at=10)  # e.g. sshd still re-executing
    assert "confirmed" in confirm_new_login(SPEC, host.opener, host.clock, host.sleep)
    assert 3 <= len(host.logins) <= 5 and host.now < 25


def test_no_login_in_the_window_waits_for_the_revert_and_says_so() -> None:
    host = FakeHost(opens_at=10**6, revert_at=30)
    with pytest.raises(HomelabError) as exc:
        confirm_new_login(SPEC, host.opener, host.clock, host.sleep)
    msg = exc.value.message
    assert msg.startswith("h1: firewall change rolled back: no new SSH login as alice worked within 30 s "
                          "(connect to h1 (10.0.0.11:22): timed out)")
    assert msg.endswith("the host restored the previous config and answers SSH again (as alice)")
    assert "locked homelab out" in exc.value.hint
    assert not any("confirm" in s for s in host.scripts)  # never confirmed
    assert host.now >= 33  # waited for the host's own timer


def test_host_gone_for_good_is_reported() -> None:
    host = FakeHost(opens_at=10**6)
    with pytest.raises(HomelabError) as exc:
        confirm_new_login(SPEC, host.opener, host.clock, host.sleep)
    assert exc.value.message.endswith("the host does NOT answer SSH yet: check it on its console")
    assert {u for u, _ in host.logins} == {"alice", "admin"}  # tried the previous login user too


def test_after_a_port_move_is_undone_the_old_port_is_tried() -> None:
    host = FakeHost(opens_at=10**6)
    spec = {**SPEC, "port": 2222, "fallback_port": 22}
    with pytest.raises(HomelabError):
        confirm_new_login(spec, host.opener, host.clock, host.sleep)
    assert ("admin", 22) in host.logins and ("alice", 2222) in host.logins


def test_too_late_confirmation_is_an_error() -> None:
    host = FakeHost(rc=3)
    with pytest.raises(HomelabError) as exc:
        confirm_new_login(SPEC, host.opener, host.clock, host.sleep)
    assert "was undone before the confirmation arrived" in exc.value.message
    assert "raise permissions.revert_after" in exc.value.hint


def test_arm_failure_changes_nothing_and_says_why() -> None:
    calls: list[str] = []

    def run(cmd: str) -> tuple[bool, str]:
        calls.append(cmd)
        return False, ("/var/lib/homelab/guard/nft.new:3:1-2: Error: syntax error\n"
                       "homelab-guard: nft: the new file does not pass the check above; nothing was changed")

    with pytest.raises(HomelabError) as exc:
        arm_and_confirm(SPEC, run, FakeHost().opener)
    assert calls == ["/usr/local/sbin/homelab-guard arm nft 0123456789abcdef 30"]
    assert "firewall change not applied: /var/lib/homelab/guard/nft.new:3:1-2: Error: syntax error" in exc.value.message


def test_arm_then_confirm() -> None:
    host = FakeHost()
    lines = arm_and_confirm(SPEC, lambda cmd: (True, "homelab-guard: nft: change 0123 is live\n"), host.opener)
    assert lines == ["homelab-guard: nft: change 0123 is live", "h1: firewall change confirmed by a new login as alice"]
