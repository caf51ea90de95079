"""Config parsing: located errors, all at once, safe YAML, limits, identifier patterns."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from homelab.config import parse_config
from homelab.config.yamlpos import MAX_BYTES
from homelab.errors import ConfigError

GOOD = """\
version: 1
privilege:
  ssh_key: ~/.ssh/id_ed25519
compute:
  base:
    timezone: Europe/Berlin
    packages: [jq, curl]
  machines:
    - name: pi-1
      address: 192.168.1.20
      user: admin
    - name: nas
      address: nas.home.arpa
      port: 2222
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def test_good_config_parses() -> None:
    cfg = parse_config(GOOD, Path("/tmp/x/c.yaml"))
    assert [m.name for m in cfg.machines] == ["pi-1", "nas"]
    assert cfg.machines[0].user == "admin" and cfg.machines[0].sudo
    assert cfg.machines[1].port == 2222 and cfg.machines[1].user == "root"
    assert cfg.compute.base.timezone == "Europe/Berlin"
    assert cfg.compute.base.packages == ("jq", "curl")
    assert cfg.state_path == Path("/tmp/x/c.state.json")


def test_all_problems_reported_with_positions_and_hints() -> None:
    text = GOOD.replace("user: admin", "usr: admin").replace("port: 2222", "port: 70000") + "stroage: {}\n"
    got = problems(text)
    assert "c.yaml:11:7: compute.machines[0].usr: unknown key (hint: did you mean 'user'?)" in got
    assert "c.yaml:14:13: compute.machines[1].port: should be an integer 1-65535, got 70000" in got
    assert "c.yaml:15:1: stroage: unknown key (hint: did you mean 'storage'?)" in got
    assert len(got) == 3


def test_section_of_unbuilt_layer_is_refused_not_ignored() -> None:
    got = problems("links:\n  web: {}\n")
    assert got == ["c.yaml:1:1: links: layer 7 (links) is not supported yet "
                   "(hint: remove this section; it will be read once the layer exists)"]


def test_a_machine_may_name_its_public_ipv6_address() -> None:
    cfg = parse_config(GOOD.replace("      user: admin\n", "      user: admin\n      ipv6: 2001:DB8:0:0::20\n"),
                       Path("c.yaml"))
    assert (cfg.machines[0].ipv6, cfg.machines[1].ipv6) == ("2001:db8::20", None)
    for bad in ("192.168.1.20", "nas.home.arpa", "2001:db8::zz"):
        got = problems(GOOD.replace("      user: admin\n", f"      user: admin\n      ipv6: {bad}\n"))
        assert got == [f"c.yaml:12:13: compute.machines[0].ipv6: '{bad}' is not an IPv6 address (hint: like "
                       "2001:db8::7 (the machine's IPv4 address or name goes in address))"], got


@pytest.mark.parametrize("field,value", [
    ("name", "'pi; rm -rf /'"), ("name", "'$(reboot)'"), ("user", "'ad min'"), ("address", "'a b'"),
    ("user", "'root`id`'"),
])
def test_identifiers_that_reach_shell_are_checked(field: str, value: str) -> None:
    machine = {"name": "ok", "address": "10.0.0.1", "user": "admin"}
    machine[field] = value
    body = "\n".join(f"      {k}: {v}" for k, v in machine.items()).replace("      ", "    - ", 1)
    got = problems(f"compute:\n  machines:\n{body}\n")
    assert any(f"compute.machines[0].{field}:" in g for g in got), got


def test_package_and_timezone_patterns() -> None:
    got = problems("compute:\n  base:\n    timezone: 'Europe/Berlin; id'\n    packages: ['jq && reboot']\n")
    assert any("compute.base.timezone" in g for g in got)
    assert any("compute.base.packages[0]" in g for g in got)


def test_python_tags_are_refused() -> None:
    got = problems("compute: !!python/object/apply:os.system ['id']\n")
    assert "not allowed" in got[0] and got[0].startswith("c.yaml:1:10:")


def test_billion_laughs_is_rejected_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    t0 = time.process_time()  # CPU seconds: other work on a shared machine must not fail this
    got = problems("\n".join(lines) + "\n")
    assert time.process_time() - t0 < 1.0
    assert "too many values" in got[0]


def test_size_limit() -> None:
    got = problems("# " + "x" * (MAX_BYTES + 10) + "\n")
    assert "larger than" in got[0]


def test_yaml_syntax_error_located() -> None:
    got = problems("compute:\n  machines: [\n")
    assert got[0].startswith("c.yaml:") and "YAML syntax" in got[0]


def test_duplicate_keys_and_names() -> None:
    assert "duplicate key 'compute'" in problems("compute: {}\ncompute: {}\n")[0]
    got = problems("compute:\n  machines:\n    - {name: a, address: 10.0.0.1}\n    - {name: a, address: 10.0.0.2}\n")
    assert "already used by compute.machines[0]" in got[0]


def test_secrets_are_never_plain_in_config() -> None:
    got = problems("privilege:\n  hcloud_token: abc123\n")
    assert "secrets are never written in the config" in got[0]
    cfg = parse_config("privilege:\n  hcloud_token: {env: HCLOUD_TOKEN}\n", Path("c.yaml"))
    assert cfg.privilege.hcloud_token is not None and cfg.privilege.hcloud_token.env == "HCLOUD_TOKEN"


def test_required_keys() -> None:
    got = problems("compute:\n  machines:\n    - name: a\n")
    assert "compute.machines[0].address: is required" in got[0]


def test_a_pasted_token_is_not_taken_for_a_variable_name() -> None:
    token = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3kL5mN7pQ9rS1tU3v"
    got = problems(f"privilege:\n  hcloud_token: {{env: {token}}}\n")
    assert "looks like a token" in got[0] and token not in got[0]
    parse_config("privilege:\n  hcloud_token: {env: HCLOUD_TOKEN_PROD}\n", Path("c.yaml"))
