"""Reading a Located mapping with checks that collect every problem, not just the first.

A `Section` wraps one YAML mapping and its dotted path. Each accessor checks type, range and
pattern, records a located Problem on failure and returns a safe default, so validation goes
on and the user sees all problems at once. `done()` reports unknown keys with a suggestion.
"""
from __future__ import annotations

import difflib
import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

from homelab.config.yamlpos import Located, show
from homelab.config.yamlpos import describe_type as describe_type  # re-exported: recipe.py reads it here
from homelab.errors import Problem
from homelab.secrets import SecretRef

# Every identifier that can end up in a shell command is checked here, against patterns
# that leave no room for quoting tricks (pyinfra does not quote every argument for us).
NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")  # host / app / server names: a DNS label
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]{0,99}$")
TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
PATH = re.compile(r"^[A-Za-z0-9_./~+@-]{1,255}$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# API tokens (Hetzner's are 64 letters and digits; others add a prefix like `ghp_`) hold a long
# run of letters and digits, in any case; no variable name does
LOOKS_LIKE_TOKEN = re.compile(r"(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{32,}")
DOTTED_NUMBERS = re.compile(r"^[0-9.]+$|\.[0-9]+$")  # meant as an IPv4 address (no top-level domain is numeric)
SSH_PUBKEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/=]+( [^\n\r]{0,200})?$")

_MISSING = object()
T = TypeVar("T")


@dataclass
class Problems:
    """Collects located problems for one file."""

    file: str
    items: list[Problem] = field(default_factory=list)

    def add(self, at: Located | None, path: str, message: str, hint: str = "", key: bool = False) -> None:
        line, col = (1, 1)
        if at is not None:
            line, col = (at.key_line, at.key_col) if key and at.key_line else (at.line, at.col)
        self.items.append(Problem(self.file, line, col, path, message, hint))


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(choices))}"


class Section:
    """One mapping in the config, read key by key."""

    def __init__(self, node: Located, path: str, problems: Problems) -> None:
        self.node = node
        self.path = path
        self.problems = problems
        self.used: set[str] = set()
        self.ok = True
        if not isinstance(node.value, dict):
            # the whole file (path ""): say what a config looks like, not just what it is not
            hint = "" if path else "a config is sections like `compute:` at the start of a line (see config.example.yaml)"
            self.fail(node, path, f"should be a mapping, not {describe_type(node.value)}", hint)
            self.items: dict[str, Located] = {}
        else:
            self.items = node.value

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, at: Located | None, path: str, message: str, hint: str = "", key: bool = False) -> None:
        self.ok = False
        self.problems.add(at, path, message, hint, key)

    def has(self, key: str) -> bool:
        return key in self.items and self.items[key].value is not None

    def raw(self, key: str) -> Located | None:
        self.used.add(key)
        return self.items.get(key)

    def _get(self, key: str, required: bool) -> Located | None:
        node = self.raw(key)
        if node is None or node.value is None:
            if required:
                self.fail(self.node, self.sub(key), "is required")
            return None
        return node

    def text(self, key: str, default: str | None = None, *, required: bool = False,
            pattern: re.Pattern[str] | None = None, hint: str = "", choices: tuple[str, ...] = ()) -> str | None:
        node = self._get(key, required)
        if node is None:
            return default
        v = node.value
        if isinstance(v, (int, float)) and not isinstance(v, bool) and pattern is not None:
            v = str(v)  # e.g. a numeric host name; the pattern decides
        if not isinstance(v, str):
            self.fail(node, self.sub(key), f"should be a string, not {describe_type(v)}", hint)
            return default
        if choices and v not in choices:
            self.fail(node, self.sub(key), f"{show(v)} is not one of {', '.join(choices)}",
                      suggest(v, list(choices)) if difflib.get_close_matches(v, choices, 1, 0.6) else hint)
            return default
        if pattern is not None and not pattern.match(v):
            self.fail(node, self.sub(key), f"{show(v)} is not allowed here", hint)
            return default
        return v

    def integer(self, key: str, default: int | None = None, *, required: bool = False,
            lo: int | None = None, hi: int | None = None) -> int | None:
        node = self._get(key, required)
        if node is None:
            return default
        v = node.value
        wanted = f"should be an integer {lo}-{hi}" if lo is not None and hi is not None else "should be an integer"
        if lo is not None and lo == hi:
            wanted = f"should be {lo}"  # e.g. version: "an integer 1-1" says it oddly
        if not isinstance(v, int) or isinstance(v, bool):
            self.fail(node, self.sub(key), f"{wanted}, not {describe_type(v)} ({show(v)})"
                      if isinstance(v, str) else f"{wanted}, not {describe_type(v)}")
            return default
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            self.fail(node, self.sub(key), f"{wanted}, got {show(v)}")
            return default
        return v

    def number(self, key: str, default: float | None = None, *, lo: float = 0.0) -> float | None:
        node = self._get(key, False)
        if node is None:
            return default
        v = node.value
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            what = show(v) if isinstance(v, str) else describe_type(v)
            self.fail(node, self.sub(key), f"should be a number >= {lo:g}, not {what}")
            return default
        if not math.isfinite(v) or v < lo:
            self.fail(node, self.sub(key), f"should be a number >= {lo:g}, not {show(v)}")
            return default
        return float(v)

    def flag(self, key: str, default: bool) -> bool:
        node = self._get(key, False)
        if node is None:
            return default
        if not isinstance(node.value, bool):
            self.fail(node, self.sub(key), f"should be true or false, not {describe_type(node.value)}")
            return default
        return node.value

    def entries(self, key: str, *, required: bool = False) -> list[tuple[Located, str]]:
        """Items of a list with their dotted paths (`key[0]`)."""
        node = self._get(key, required)
        if node is None:
            return []
        if not isinstance(node.value, list):
            self.fail(node, self.sub(key), f"should be a list, not {describe_type(node.value)}")
            return []
        return [(item, f"{self.sub(key)}[{i}]") for i, item in enumerate(node.value)]

    def str_list(self, key: str, *, pattern: re.Pattern[str] | None = None, hint: str = "",
                 default: tuple[str, ...] = ()) -> tuple[str, ...]:
        if not self.has(key):
            self.raw(key)
            return default
        out: list[str] = []
        for item, path in self.entries(key):
            if not isinstance(item.value, str):
                self.fail(item, path, f"should be a string, not {describe_type(item.value)}")
            elif pattern is not None and not pattern.match(item.value):
                self.fail(item, path, f"{show(item.value)} is not allowed here", hint)
            else:
                out.append(item.value)
        return tuple(out)

    def section(self, key: str) -> Section | None:
        node = self._get(key, False)
        if node is None:
            return None
        sec = Section(node, self.sub(key), self.problems)
        if not isinstance(node.value, dict):
            self.ok = False
        return sec

    def items_of(self, key: str) -> Iterator[Section]:
        """Each item of a list of mappings, as a Section."""
        for item, path in self.entries(key):
            yield Section(item, path, self.problems)

    def unique_items(self, key: str, parse: Callable[[Section], T | None], *, hint: str,
                     seen: dict[str, str] | None = None) -> list[T]:
        """Parse a list of named mappings, refusing a name used twice (`seen`: name -> path,
        shared when names must be unique across lists, e.g. machines and servers)."""
        seen = {} if seen is None else seen
        out: list[T] = []
        for item in self.items_of(key):
            obj = parse(item)
            if obj is None:
                continue
            name = getattr(obj, "name")
            if name in seen:
                self.fail(item.raw("name"), f"{item.path}.name", f"{name!r} is already used by {seen[name]}", hint)
                continue
            seen[name] = item.path
            out.append(obj)
        return out

    def address(self, key: str, *, required: bool = False) -> str | None:
        v = self.text(key, required=required)
        if v is None:
            return None
        try:
            ipaddress.ip_address(v)
            return v
        except ValueError:
            pass
        if ":" in v:
            why = f"{show(v)} is not a valid IPv6 address"
        elif DOTTED_NUMBERS.search(v):
            # `300.1.2.3` fits the host-name pattern, but nobody means a host name by it
            why = f"{show(v)} is not a valid IPv4 address"
        elif HOSTNAME.match(v):
            return v
        else:
            why = f"{show(v)} is not an IP address or host name"
        self.fail(self.raw(key), self.sub(key), why,
                  "like 192.168.1.20 (four numbers 0-255), 2001:db8::7 or nas.home.arpa")
        return None

    def secret_ref(self, key: str, *, required: bool = False) -> SecretRef | None:
        """`{env: NAME}` or `{command: "pass show x"}`; a plain string is refused (no secrets in config)."""
        node = self._get(key, required)
        if node is None:
            return None
        if not isinstance(node.value, dict):
            self.fail(node, self.sub(key), "secrets are never written in the config",
                      "use {env: VARIABLE} or {command: \"pass show name\"}")
            return None
        sec = Section(node, self.sub(key), self.problems)
        env = self._env_name(sec)
        cmd = sec.text("command")
        sec.done(["env", "command"])
        if not sec.ok:  # already explained, located at the bad key
            self.ok = False
            return None
        if bool(env) == bool(cmd):
            self.fail(node, self.sub(key), "give exactly one of env or command")
            return None
        if not sec.ok:
            self.ok = False
        return SecretRef(env=env, command=cmd)

    @staticmethod
    def _env_name(sec: Section) -> str | None:
        """`env:` of a secret reference. Its value is never quoted in a message: when it is not a
        variable name, it is most likely the secret itself, pasted in the wrong place."""
        node = sec._get("env", False)
        if node is None:
            return None
        v = node.value
        if isinstance(v, str) and LOOKS_LIKE_TOKEN.search(v):
            sec.fail(node, sec.sub("env"), "this looks like a token, not the name of a variable",
                     "write the variable's name (e.g. HCLOUD_TOKEN) and export the token in it; "
                     "if it is a real token, revoke it: it was written to this file")
            return None
        if not isinstance(v, str) or not ENV_VAR.match(v):
            sec.fail(node, sec.sub("env"), "should be the name of an environment variable",
                     "letters, digits and '_', not starting with a digit, like HCLOUD_TOKEN")
            return None
        return v

    def done(self, known: list[str] | None = None) -> None:
        """Report keys nobody asked for: typos are errors, not silently ignored."""
        allowed = known if known is not None else sorted(self.used)
        for k, node in self.items.items():
            if k not in allowed:
                self.fail(node, self.sub(k), "unknown key", suggest(k, list(allowed)), key=True)
