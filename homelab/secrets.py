"""Secrets: values that never print, and where they come from (env var or command).

A secret is never written in the config: the config says where to get it
(`{env: HCLOUD_TOKEN}` or `{command: "pass show hetzner"}`). `Secret` redacts itself in
str/repr/format so it cannot leak into logs, plan output, tracebacks or the TUI by accident.
"""
from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass

from homelab.errors import HomelabError

REDACTED = "[REDACTED]"


class Secret:
    """A string that shows as [REDACTED]; call `.reveal()` at the single place it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple:  # pickling would copy the value somewhere we do not control
        raise TypeError("secrets cannot be pickled")


@dataclass(frozen=True)
class SecretRef:
    """Where a secret comes from: exactly one of an environment variable or a command."""

    env: str | None = None
    command: str | None = None

    def describe(self) -> str:
        return f"env {self.env}" if self.env else f"command `{self.command}`"

    def resolve(self, timeout: float = 30.0) -> Secret:
        """Read the secret now. Raises HomelabError naming the source, never the value."""
        if self.env:
            value = os.environ.get(self.env, "")
            if not value:
                raise HomelabError(
                    f"secret from env {self.env}: the variable is not set or empty",
                    f"export {self.env}=... before running homelab",
                )
            return Secret(value)
        assert self.command is not None
        try:
            out = subprocess.run(
                shlex.split(self.command), capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HomelabError(f"secret from {self.describe()}: {type(exc).__name__}", "check the command runs on its own") from None
        if out.returncode != 0 or not out.stdout.strip():
            raise HomelabError(
                f"secret from {self.describe()}: exit {out.returncode}, no value",
                "run the command by hand to see why it fails",
            )
        # `pass show` and friends print the secret on the first line
        return Secret(out.stdout.strip().splitlines()[0])


def redact(text: str, secrets: list[Secret]) -> str:
    """Replace every secret value in text (for output lines coming back from hosts)."""
    for s in secrets:
        v = s.reveal()
        if v:
            text = text.replace(v, REDACTED)
    return text
