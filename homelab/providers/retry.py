"""When to try an API call again, and how long to wait: bounded, jittered, deadline-aware.

Pure: the clock, the sleep and the random source are passed in, so tests run the whole
policy on a fake clock in microseconds. The numbers follow Hetzner's documented limits:
3600 requests per hour per project, refilled one per second, so after a 429 the next
request is possible about 3600/limit seconds later; RateLimit-Reset is when the *whole*
budget is back, which can be an hour away, so we never wait for it, we only name it.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Callable, Mapping


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all (1 + 5 retries)
    base: float = 1.0  # seconds before the first retry
    cap: float = 30.0  # longest single wait
    budget: float = 120.0  # most seconds spent waiting across all retries of one call

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Truncated exponential backoff with "equal jitter": half fixed, half random.

        Equal rather than full jitter: a retry never comes sooner than half the step, so a
        busy API is not hit again at once, and many clients still spread out.
        """
        step = min(self.cap, self.base * 2.0 ** retry)  # 2.0: int ** int is typed Any (a negative power is a float)
        return step / 2 + rand() * step / 2


def rate_limit_wait(headers: Mapping[str, str], now_epoch: float) -> float:
    """Seconds the rate-limit headers ask us to wait (0 if they say nothing)."""
    wait = 0.0
    lower = {k.lower(): v for k, v in headers.items()}
    retry_after = lower.get("retry-after")
    if retry_after and retry_after.strip().isdigit():  # generic HTTP; Hetzner documents RateLimit-*
        wait = max(wait, float(retry_after))
    remaining, limit = lower.get("ratelimit-remaining"), lower.get("ratelimit-limit")
    if remaining is not None and remaining.strip() == "0" and limit and limit.strip().isdigit() and int(limit) > 0:
        wait = max(wait, 3600.0 / int(limit))  # one request is refilled every 3600/limit s
    return wait


def describe_reset(headers: Mapping[str, str]) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    reset = lower.get("ratelimit-reset", "")
    if reset.strip().isdigit():
        return f"; the limit is fully restored at {time.strftime('%H:%M:%S', time.localtime(int(reset)))}"
    return ""


@dataclass
class Attempts:
    """The state of one retried call: how many tries, how much waited, when to give up."""

    policy: RetryPolicy
    clock: Callable[[], float]
    rand: Callable[[], float]
    tries: int = 0
    waited: float = 0.0

    def next_wait(self, asked: float = 0.0) -> float | None:
        """Seconds to sleep before the next try, or None: give up (attempts or budget spent)."""
        self.tries += 1
        if self.tries >= self.policy.attempts:
            return None
        wait = max(self.policy.backoff(self.tries - 1, self.rand), asked)
        if self.waited + wait > self.policy.budget:
            return None
        self.waited += wait
        return wait


def not_there(exc: BaseException) -> str:
    """Why an endpoint will not answer however long we wait ("" if it may be busy): a refused
    connection (nothing listens) or a name that does not resolve. Walks the chain requests and
    urllib3 wrap the socket error in."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused: nothing listens there"
        if isinstance(e, socket.gaierror):
            return "the name does not resolve"
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
                    if isinstance(x, BaseException))
    return ""
