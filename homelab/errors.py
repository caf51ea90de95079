"""One error tree for everything homelab reports to a person.

Every error carries a message and a hint that says what to do next. Lower-level errors are
wrapped at the boundary with a verb phrase ("connect to web-1: ...") and keep their cause.
"""
from __future__ import annotations

from dataclasses import dataclass


class HomelabError(Exception):
    """An error with a one-line message and a hint for the next step."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(HomelabError):
    """Bad command line or bad config: nothing was touched."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One config problem, located: `file:line:col: dotted.path: message`."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: "
        path = f"{self.path}: " if self.path else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}{path}{self.message}{hint}"


class ConfigError(UsageError):
    """All problems found in a config, reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col))
        first = self.problems[0] if self.problems else None
        super().__init__(
            first.render() if first else "invalid config",
            "fix the lines above and run `homelab validate` again",
        )

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


class HostKeyError(HomelabError):
    """A host's SSH key is unknown (and not allowed) or changed."""


class HostDown(HomelabError):
    """A host did not take the TCP connection (refused, timed out, no route, its name did not
    resolve): it is off, or rebooting, or its address is wrong. Not a login or host-key problem."""


class LockedError(HomelabError):
    """Another homelab run holds the state lock."""
