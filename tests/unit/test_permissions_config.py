"""`permissions:` parsing: what is accepted, and every problem located with a hint."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config import parse_config
from homelab.config.permissions import AllowRule, check_public_key
from homelab.errors import ConfigError
from test_permissions_fixtures import ALICE, BASE, BOB, OPERATOR, RSA_1024, config


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def test_good_config() -> None:
    p = config().get("permissions")
    assert [u.name for u in p.users] == ["alice", "bob"]
    assert p.operator is not None and p.operator.name == "alice"
    assert p.users[0].keys == (ALICE,) and p.users[1].sudo is False
    assert p.sshd.port == 22 and not p.sshd.root_login and not p.sshd.password_login
    assert p.firewall.enabled and p.firewall.ingress_hosts == ("web-1",)
    assert p.firewall.allow == (AllowRule(9100, "tcp", None, "10.100.0.0/24"),)
    assert p.unattended_upgrades and p.revert_after == 90


def test_ports_ranges_and_sources_are_normalized() -> None:
    text = BASE.replace("      - {port: 9100, from: 10.100.0.0/24}",
                        '      - {port: "8000-8100", proto: udp, from: 10.1.2.3/16}\n'
                        "      - {port: 53, proto: udp, from: '2001:db8::1/32'}")
    allow = config(text).get("permissions").firewall.allow
    assert allow[0] == AllowRule(8000, "udp", 8100, "10.1.0.0/16") and allow[0].ports == "8000-8100"
    assert allow[1].source == "2001:db8::/32"


def test_public_key_checks() -> None:
    assert check_public_key(ALICE) is None and check_public_key(OPERATOR) is None
    assert "not an OpenSSH public key" in (check_public_key("AAAA bob") or "")
    assert "1024-bit RSA key" in (check_public_key(RSA_1024) or "")
    # the blob of an ed25519 key labelled as ecdsa
    assert "is not a ecdsa-sha2-nistp256 key" in (check_public_key(
        "ecdsa-sha2-nistp256 " + ALICE.split()[1]) or "")
    assert "broken base64" in (check_public_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP9Ld=uR") or "")


def test_every_problem_located() -> None:
    text = f"""\
compute:
  machines: [{{name: web-1, address: 10.0.0.11}}]
permissions:
  users:
    - name: Alice
      keys: ["{ALICE}"]
      sudo: yes please
    - name: root
    - name: bob
      keys: ["{RSA_1024}", "ssh-ed25519 nope", "{BOB}", "{BOB} again"]
      sude: true
  sshd: {{port: 0, root_login: "no"}}
  firewall:
    ingress_hosts: [web-2]
    allow:
      - {{port: 70000}}
      - {{port: 22, proto: icmp, from: somewhere}}
  revert_after: 5
"""
    got = problems(text)
    expected = [
        "c.yaml:5:13: permissions.users[0].name: 'Alice' is not allowed here (hint: a Unix user name like 'alice')",
        "c.yaml:7:13: permissions.users[0].sudo: should be true or false, not a string",
        "c.yaml:8:13: permissions.users[1].name: 'root' is a system account",
        "c.yaml:10:14: permissions.users[2].keys[0]: is a 1024-bit RSA key; at least 2048 bits are needed",
        "permissions.users[2].keys[1]: says ssh-ed25519 but its key data is not a ssh-ed25519 key",
        "permissions.users[2].keys[3]: is listed twice for this user",
        "c.yaml:11:7: permissions.users[2].sude: unknown key (hint: did you mean 'sudo'?)",
        "c.yaml:12:16: permissions.sshd.port: should be an integer 1-65535, got 0",
        "permissions.sshd.root_login: should be true or false, not a string",
        "c.yaml:16:16: permissions.firewall.allow[0].port: 70000 is not a port",
        "permissions.firewall.allow[1].proto: 'icmp' is not one of tcp, udp",
        "permissions.firewall.allow[1].from: 'somewhere' is not an IP address or network",
        "c.yaml:18:17: permissions.revert_after: should be an integer 10-600, got 5",
    ]
    for want in expected:
        assert any(want in g for g in got), f"missing: {want}\n" + "\n".join(got)
    assert len(got) == len(expected), "\n".join(got)


def test_root_login_off_needs_a_sudo_user() -> None:
    text = BASE.replace("      sudo: true\n", "")
    got = problems(text)
    assert got == ["c.yaml:6:3: permissions.users: root login is off, so one user needs sudo: true (homelab logs in "
                   "as the first such user) (hint: add `sudo: true` to your own user, or set sshd.root_login: true)"]
    # with root login on, nobody needs sudo
    ok = config(text.replace("  firewall:", "  sshd: {root_login: true}\n  firewall:"))
    assert ok.get("permissions").operator is None


def test_duplicate_users_are_refused() -> None:
    got = problems(BASE.replace("    - name: bob\n", "    - name: alice\n"))
    assert got == ["c.yaml:10:13: permissions.users[1].name: 'alice' is already used by permissions.users[0] (hint: list every user once)"]


def test_ingress_hosts_must_exist() -> None:
    got = problems(BASE.replace("ingress_hosts: [web-1]", "ingress_hosts: [web-1, web-9]"))
    assert any("c.yaml:13:28: permissions.firewall.ingress_hosts[1]: no machine or server named 'web-9' "
               "(hint: known: pi-1, web-1)" in g for g in got), got


def test_key_lines_are_whitespace_normalized() -> None:
    text = BASE.replace(f'keys: ["{ALICE}"]', "keys:\n        - >-\n          " + ALICE.replace(" ", "\n          ", 1))
    assert config(text).get("permissions").users[0].keys == (ALICE,)
