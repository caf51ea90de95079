"""API hygiene on a fake clock: bounded retries, jitter, 429 honoured, deadlines, no double create."""
from __future__ import annotations

from typing import Any

import pytest
import requests
from hcloud import APIException

from homelab.errors import HomelabError
from homelab.providers.hcloud_api import Clock, HcloudApi
from homelab.providers.retry import Attempts, RetryPolicy, rate_limit_wait
from homelab.providers.ssh_wait import wait_for_ssh
from homelab.secrets import Secret


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def clock(self, rand: float = 0.5) -> Clock:
        return Clock(monotonic=self.monotonic, sleep=self.sleep, epoch=lambda: 1_700_000_000.0, rand=lambda: rand)


def api(t: FakeTime, policy: RetryPolicy | None = None) -> HcloudApi:
    return HcloudApi(Secret("s3cr3t-t0ken"), "http://127.0.0.1:9/v1", policy=policy, clock=t.clock())


def failing(times: int, exc: Exception, result: Any = "ok") -> Any:
    calls = {"n": 0}

    def fn() -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc
        return result

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def rate_limited() -> APIException:
    return APIException("rate_limit_exceeded", "limit reached", None)


def test_backoff_grows_is_jittered_and_capped() -> None:
    p = RetryPolicy(base=1.0, cap=8.0)
    assert [p.backoff(i, lambda: 0.0) for i in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [p.backoff(i, lambda: 1.0) for i in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_attempts_are_bounded_by_count_and_budget() -> None:
    a = Attempts(RetryPolicy(attempts=3, budget=100), lambda: 0.0, lambda: 1.0)
    assert [a.next_wait(), a.next_wait(), a.next_wait()] == [1.0, 2.0, None]
    b = Attempts(RetryPolicy(attempts=10, base=10, cap=100, budget=25), lambda: 0.0, lambda: 1.0)
    assert [b.next_wait(), b.next_wait()] == [10.0, None]  # 10 + 20 would pass the 25 s budget


def test_rate_limit_headers_set_the_minimum_wait() -> None:
    assert rate_limit_wait({"RateLimit-Limit": "3600", "RateLimit-Remaining": "0"}, 0) == 1.0
    assert rate_limit_wait({"RateLimit-Limit": "360", "RateLimit-Remaining": "0"}, 0) == 10.0
    assert rate_limit_wait({"RateLimit-Limit": "3600", "RateLimit-Remaining": "17"}, 0) == 0.0
    assert rate_limit_wait({"Retry-After": "7"}, 0) == 7.0


def test_429_is_retried_with_growing_delays_then_succeeds() -> None:
    t = FakeTime()
    a = api(t)
    a._last_headers.headers = {"RateLimit-Limit": "3600", "RateLimit-Remaining": "0"}
    fn = failing(3, rate_limited())
    assert a.call("list servers", fn) == "ok"
    assert fn.calls["n"] == 4
    assert t.sleeps == [1.0, 1.5, 3.0]  # max(backoff with rand 0.5, 1 s from the headers)


def test_429_forever_gives_up_with_a_clear_error() -> None:
    t = FakeTime()
    with pytest.raises(HomelabError) as exc:
        api(t, RetryPolicy(attempts=4)).call("list servers", failing(99, rate_limited()))
    assert exc.value.message.startswith("list servers: gave up after 4 tries in")
    assert "limit reached (rate_limit_exceeded)" in exc.value.message
    assert len(t.sleeps) == 3


def test_errors_that_will_not_heal_are_not_retried() -> None:
    t = FakeTime()
    fn = failing(1, APIException("invalid_input", "bad server type", None))
    with pytest.raises(HomelabError, match="create server x: bad server type"):
        api(t).call("create server x", fn)
    assert fn.calls["n"] == 1 and t.sleeps == []


def test_unauthorized_never_shows_the_token() -> None:
    with pytest.raises(HomelabError) as exc:
        api(FakeTime()).call("check", failing(1, APIException("unauthorized", "unable to authenticate", None)))
    assert "refused the token" in exc.value.message and "s3cr3t" not in exc.value.message


def test_unsure_create_looks_before_it_tries_again() -> None:
    """A create that timed out may have made the server: look it up instead of making a second."""
    t = FakeTime()
    create = failing(1, requests.ReadTimeout("read timed out"))
    found = api(t).call("create server web-1", create, idempotent=False, recover=lambda: "the existing server")
    assert found == "the existing server" and create.calls["n"] == 1


def test_unsure_create_that_made_nothing_is_tried_again() -> None:
    t = FakeTime()
    create = failing(1, requests.ReadTimeout("read timed out"), result="created")
    assert api(t).call("create server web-1", create, idempotent=False, recover=lambda: None) == "created"
    assert create.calls["n"] == 2


def test_rate_limited_create_is_retried_without_lookup() -> None:
    looked: list[int] = []
    create = failing(2, rate_limited(), result="created")
    assert api(FakeTime()).call("create", create, idempotent=False, recover=lambda: looked.append(1)) == "created"
    assert looked == []  # a 429 means the API did nothing: no need to look


class Action:
    def __init__(self, status: str) -> None:
        self.status, self.command, self.error = status, "create_server", None


def test_slow_action_hits_the_deadline() -> None:
    t = FakeTime()
    a = api(t)
    a.client.actions.get_by_id = lambda i: Action("running")  # type: ignore[method-assign]
    with pytest.raises(HomelabError) as exc:
        a.wait_action("create server web-1", 42, timeout=30)
    assert exc.value.message == ("create server web-1: Hetzner action create_server (id 42) still running after 30 s")
    assert 30 <= t.now - 1000.0 <= 30.01  # never waited past the deadline
    assert max(t.sleeps) <= 2.0


def test_hcloud_internals_we_rely_on_exist() -> None:
    """hcloud's own retries are switched off through its internals; fail here if they move."""
    a = api(FakeTime())
    assert a.client._client._retry_max_retries == 0
    assert a.client._client._session.hooks["response"]


def test_ssh_wait_has_a_deadline_and_a_clear_message() -> None:
    t = FakeTime()
    with pytest.raises(HomelabError) as exc:
        wait_for_ssh("web-1", "192.0.2.1", 22, "ssh-ed25519 AAAA", 180, probe=lambda a, p, k: None,
                     clock=t.monotonic, sleep=t.sleep)
    assert exc.value.message == "server web-1 did not answer SSH within 180 s"
    assert t.now - 1000.0 <= 182


def test_ssh_wait_refuses_another_host_key() -> None:
    t = FakeTime()
    with pytest.raises(HomelabError, match="host key other than the one homelab sent"):
        wait_for_ssh("web-1", "192.0.2.1", 22, "ssh-ed25519 AAAA", 5, probe=lambda a, p, k: "ssh-ed25519 BBBB",
                     clock=t.monotonic, sleep=t.sleep)


def test_ssh_wait_returns_once_the_pinned_key_answers() -> None:
    t = FakeTime()
    answers = iter([None, None, "ssh-ed25519 AAAA"])
    wait_for_ssh("web-1", "192.0.2.1", 22, "ssh-ed25519 AAAA x", 60, probe=lambda a, p, k: next(answers),
                 clock=t.monotonic, sleep=t.sleep)
    assert len(t.sleeps) == 2
