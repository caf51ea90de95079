"""Property-based tests of the config parser: no input crashes it or takes over 1 s.

Every input either parses to a Config or raises ConfigError whose problems all carry a
position inside the file; nothing else escapes (no RecursionError, KeyError, TypeError ...).
"""
from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homelab.config import Config, parse_config
from homelab.errors import ConfigError

FAST = settings(max_examples=150, deadline=timedelta(seconds=1), suppress_health_check=[HealthCheck.too_slow])

# words the parser knows, so generated documents get past "unknown key" into the section parsers
KEYS = ["version", "billing", "budget", "currency", "privilege", "ssh_key", "generate_key", "use_agent",
        "hcloud_token", "env", "command", "compute", "machines", "name", "address", "user", "port", "key",
        "base", "timezone", "packages", "set_hostname", "hetzner", "servers", "type", "location", "image",
        "labels", "protection", "backups", "api_endpoint", "mesh", "cidr", "interface", "nodes", "endpoint",
        "relay", "keepalive", "permissions", "users", "keys", "sudo", "sshd", "root_login", "password_login",
        "firewall", "allow", "from", "proto", "ingress_hosts", "enabled", "revert_after", "apps"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["10.0.0.1", "300.1.2.3", "::1", "h1", "pi-1", "UTC", "Europe/Berlin", "10.100.0.0/24",
                     "ssh-ed25519 AAAA", "auto", "tcp", "8000-8100", "cx22", "fsn1", "EUR", "", "~", "a" * 300]),
    st.text(max_size=30),
)


def documents() -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4),
                                st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)),
        max_leaves=30,
    )


def check(text: str) -> None:
    try:
        cfg = parse_config(text, Path("c.yaml"))
    except ConfigError as exc:
        lines = text.count("\n") + 1
        assert exc.problems, "a ConfigError names at least one problem"
        for p in exc.problems:
            assert 1 <= p.line <= lines + 1 and p.col >= 1, p
            assert "Traceback" not in p.message and "NoneType" not in p.message, p
        return
    assert isinstance(cfg, Config)


@FAST
@given(st.text(alphabet=string.printable + "\u00e9\u2028\ufeff", max_size=400))
def test_any_text(text: str) -> None:
    check(text)


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), documents(), max_size=6))
def test_any_document_made_of_config_words(doc: dict[str, Any]) -> None:
    check(yaml.safe_dump(doc, default_flow_style=False, allow_unicode=True))


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), documents(), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list("[]{}:-'\"&*!|>#,\t\n %@`") + ["  ", "- "])),
                min_size=1, max_size=4))
def test_documents_with_broken_syntax(doc: dict[str, Any], edits: list[tuple[int, str]]) -> None:
    text = yaml.safe_dump(doc, default_flow_style=False)
    for at, piece in edits:
        i = at % (len(text) + 1)
        text = text[:i] + piece + text[i:]
    check(text)


@FAST
@given(st.integers(1, 400), st.sampled_from(["[", "{", "- ", "a:\n", "&a [*a, "]))
def test_deep_and_repetitive(n: int, piece: str) -> None:
    check("x: " + piece * n + "\n")
