"""compute.hetzner and billing config: good configs parse, every problem is located."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config import parse_config
from homelab.errors import ConfigError

GOOD = """\
billing:
  budget: 25
  currency: EUR
compute:
  machines:
    - {name: pi-1, address: 192.168.1.20}
  hetzner:
    api_endpoint: http://127.0.0.1:8080/v1/
    ssh_key_name: me
    cluster: home-prod
    ssh_timeout: 60
    servers:
      - name: web-1
        type: cx22
        location: fsn1
        labels: {role: web, example.com/team: ops}
      - {name: arm-1, type: cax11, location: hel1, image: debian-12, protection: false, backups: true}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def test_good_hetzner_config() -> None:
    cfg = parse_config(GOOD, Path("c.yaml"))
    hz = cfg.compute.hetzner
    assert hz.api_endpoint == "http://127.0.0.1:8080/v1"
    assert hz.ssh_key_name == "me" and hz.cluster == "home-prod" and hz.ssh_timeout == 60
    assert hz.action_timeout == 600
    web, arm = hz.servers
    assert (web.name, web.type, web.location, web.image, web.protection, web.backups) == \
        ("web-1", "cx22", "fsn1", "debian-13", True, False)
    assert web.labels == (("example.com/team", "ops"), ("role", "web"))
    assert (arm.image, arm.protection, arm.backups) == ("debian-12", False, True)
    assert hz.labels_for(web) == {"role": "web", "example.com/team": "ops", "managed-by": "homelab",
                                  "homelab/cluster": "home-prod", "homelab/server": "web-1"}
    assert hz.selector() == "managed-by=homelab,homelab/cluster=home-prod"
    assert cfg.get("billing").budget == 25.0 and cfg.get("billing").currency == "EUR"


def test_hetzner_problems_are_located_and_collected() -> None:
    text = (GOOD.replace("name: arm-1", "name: pi-1")
            .replace("type: cx22", "type: CX 22")
            .replace("role: web", "managed-by: me")
            .replace("http://127.0.0.1:8080/v1/", "http://api.example.com/v1")
            .replace("ssh_timeout: 60", "ssh_timout: 60")
            .replace("currency: EUR", "currency: GBP"))
    got = problems(text)
    assert "c.yaml:3:13: billing.currency: 'GBP' is not one of EUR, USD" in got
    assert ("c.yaml:8:19: compute.hetzner.api_endpoint: plain http is allowed only to this machine (127.0.0.1) "
            "(hint: the API token is sent with every request: use https)") in got
    assert "c.yaml:11:5: compute.hetzner.ssh_timout: unknown key (hint: did you mean 'ssh_timeout'?)" in got
    assert ("c.yaml:17:16: compute.hetzner.servers[1].name: 'pi-1' is already used by compute.machines[0] "
            "(hint: every machine and server needs its own name)") in got
    assert any(p.startswith("c.yaml:14:15: compute.hetzner.servers[0].type: 'CX 22' is not allowed here") for p in got)
    assert any(p.startswith("c.yaml:16:18: compute.hetzner.servers[0].labels.managed-by: is reserved") for p in got)
    assert len(got) == 6


def test_duplicate_server_names_and_required_fields() -> None:
    got = problems("compute:\n  hetzner:\n    servers:\n      - {name: a, type: cx22, location: fsn1}\n"
                   "      - {name: a, type: cx22, location: fsn1}\n      - {name: b}\n")
    assert "c.yaml:5:16: compute.hetzner.servers[1].name: 'a' is already used by compute.hetzner.servers[0] " \
           "(hint: every machine and server needs its own name)" in got
    assert "c.yaml:6:9: compute.hetzner.servers[2].type: is required" in got
    assert "c.yaml:6:9: compute.hetzner.servers[2].location: is required" in got


def test_token_is_never_written_in_the_config() -> None:
    got = problems("privilege:\n  hcloud_token: abcdef\n")
    assert got == ["c.yaml:2:17: privilege.hcloud_token: secrets are never written in the config "
                   "(hint: use {env: VARIABLE} or {command: \"pass show name\"})"]


def test_token_source_defaults_to_env() -> None:
    cfg = parse_config("compute: {machines: []}\n", Path("c.yaml"))
    assert cfg.privilege.token_source.env == "HCLOUD_TOKEN"


def test_negative_budget_refused() -> None:
    assert problems("billing: {budget: -1}\n") == ["c.yaml:1:19: billing.budget: should be a number >= 0, not -1"]
