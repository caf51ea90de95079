"""The stand-in Hetzner API speaks the real API's shapes: the real `hcloud` library parses it.

Loopback only, no lab hosts (servers get documentation addresses), so it runs with the unit tests.
"""
from __future__ import annotations

from typing import Iterator

import pytest
import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.server_types import ServerType
from hcloud.ssh_keys import SSHKey

from homelab.lab.fake_hcloud import FakeHcloud, match_selector
from homelab.providers.cloud_init import render_user_data
from homelab.providers.keys import generate_ed25519
from homelab.secrets import Secret


@pytest.fixture
def fake() -> Iterator[FakeHcloud]:
    with FakeHcloud("tok", readonly_tokens=["ro"]) as f:
        yield f


def test_real_client_creates_lists_and_pages(fake: FakeHcloud) -> None:
    c = Client("tok", api_endpoint=fake.url)
    key = c.ssh_keys.create(name="k", public_key=generate_ed25519().public)
    for i in range(27):  # more than one page of 25
        c.servers.create(name=f"s{i}", server_type=ServerType(name="cx22"), image=Image(name="debian-13"),
                         ssh_keys=[SSHKey(id=key.id)], labels={"managed-by": "homelab", "n": str(i % 2)})
    assert len(c.servers.get_all()) == 27
    assert len(c.servers.get_all(label_selector="managed-by=homelab,n=1")) == 13
    s = c.servers.get_by_name("s3")
    assert s is not None and s.server_type.name == "cx22" and s.location.name == "fsn1"
    assert s.protection == {"delete": False, "rebuild": False}
    assert [t.name for t in c.server_types.get_all()][:2] == ["cx22", "cx32"]
    assert c.locations.get_by_name("hel1").network_zone == "eu-central"
    assert c.ssh_keys.get_by_fingerprint(key.fingerprint).name == "k"


def test_a_booted_server_has_an_ipv4_and_a_64_of_ipv6_which_homelab_reads_as_its_first_address(
        fake: FakeHcloud) -> None:
    from homelab.providers.hcloud_api import HcloudApi

    c = Client("tok", api_endpoint=fake.url)
    key = c.ssh_keys.create(name="k", public_key=generate_ed25519().public)
    made = c.servers.create(name="web", server_type=ServerType(name="cx22"), image=Image(name="debian-13"),
                            ssh_keys=[SSHKey(id=key.id)]).server
    net = c.servers.get_by_id(made.id).public_net
    assert net.ipv4.ip and net.ipv6.ip.endswith("::/64") and net.ipv6.ip.startswith("2001:db8:")
    listed = HcloudApi(Secret("tok"), fake.url).list_servers("")  # "": every server
    assert [(s.name, s.ipv6) for s in listed] == [("web", net.ipv6.ip.replace("::/64", "::1"))]


def test_keep_initializing_hides_a_booted_servers_status_and_address_for_a_while(fake: FakeHcloud) -> None:
    import time

    from homelab.providers.hcloud_api import HcloudApi

    c = Client("tok", api_endpoint=fake.url)
    key = c.ssh_keys.create(name="k", public_key=generate_ed25519().public)
    c.servers.create(name="web", server_type=ServerType(name="cx22"), image=Image(name="debian-13"),
                     ssh_keys=[SSHKey(id=key.id)])
    api = HcloudApi(Secret("tok"), fake.url)
    deadline = time.monotonic() + 5
    while api.find_server("web").status != "running":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fake.keep_initializing("web", 0.5)
    held = api.find_server("web")
    assert held is not None and (held.status, held.ipv4, held.ipv6) == ("initializing", None, None)
    time.sleep(0.6)
    up = api.find_server("web")
    assert up is not None and up.status == "running" and up.ipv4


def test_user_data_host_key_reaches_the_host_backend(fake: FakeHcloud) -> None:
    c = Client("tok", api_endpoint=fake.url)
    op = generate_ed25519("op")
    c.ssh_keys.create(name="op", public_key=op.public)
    host = generate_ed25519()
    c.servers.create(name="web-1", server_type=ServerType(name="cx22"), image=Image(name="debian-13"),
                     ssh_keys=[SSHKey(name="op")], user_data=render_user_data(host.private_openssh, host.public).reveal())
    fake.stop(destroy_hosts=False)  # waits for the boot thread
    keys, host_key = fake.backend.booted["web-1"]  # type: ignore[attr-defined]
    assert keys == [op.public]
    assert host_key is not None and host_key.public == " ".join(host.public.split()[:2])
    assert host_key.private.strip() == host.private_openssh.reveal().strip()


def test_429_carries_hetzner_rate_limit_headers(fake: FakeHcloud) -> None:
    fake.rate_limit(1)
    r = requests.get(fake.url + "/servers", headers={"Authorization": "Bearer tok"}, timeout=5)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert r.headers["RateLimit-Limit"] == "3600" and r.headers["RateLimit-Remaining"] == "0"
    assert int(r.headers["RateLimit-Reset"]) > 0
    assert requests.get(fake.url + "/servers", headers={"Authorization": "Bearer tok"}, timeout=5).ok


def test_tokens_unknown_and_read_only(fake: FakeHcloud) -> None:
    with pytest.raises(APIException) as exc:
        Client("nope", api_endpoint=fake.url).locations.get_all()
    assert exc.value.code == "unauthorized"
    ro = Client("ro", api_endpoint=fake.url)
    assert len(ro.locations.get_all()) == 3
    with pytest.raises(APIException) as exc:
        ro.ssh_keys.create(name="k", public_key=generate_ed25519().public)
    assert exc.value.code == "token_readonly"


def test_protected_server_is_not_deleted_and_resize_needs_power_off(fake: FakeHcloud) -> None:
    c = Client("tok", api_endpoint=fake.url)
    s = c.servers.create(name="a", server_type=ServerType(name="cx22"), image=Image(name="debian-13")).server
    c.servers.change_protection(s, delete=True, rebuild=True)
    with pytest.raises(APIException) as exc:
        c.servers.delete(s)
    assert exc.value.code == "protected"
    with pytest.raises(APIException):
        c.servers.change_type(s, ServerType(name="cx32"), upgrade_disk=False)
    c.servers.power_off(s)
    c.servers.change_type(s, ServerType(name="cx32"), upgrade_disk=False)
    assert c.servers.get_by_id(s.id).server_type.name == "cx32"


def test_label_selectors() -> None:
    labels = {"managed-by": "homelab", "role": "web"}
    assert match_selector(labels, "managed-by=homelab,role==web")
    assert not match_selector(labels, "managed-by=homelab,role!=web")
    assert match_selector(labels, "role in (db,web),!gone")
    assert not match_selector(labels, "role notin (web)")
    assert match_selector(labels, "")


def test_user_data_is_redacted_in_its_secret() -> None:
    host = generate_ed25519()
    assert str(render_user_data(host.private_openssh, host.public)) == "[REDACTED]"
    assert Secret  # the rendered text only leaves through reveal(), at the API call


GOLDEN = __import__("pathlib").Path(__file__).resolve().parents[1] / "golden" / "cloud_init_user_data.txt"


def test_user_data_golden() -> None:
    private = Secret("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAfake\nBBBBfake\n-----END OPENSSH PRIVATE KEY-----\n")
    text = render_user_data(private, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIfake comment").reveal()
    assert text == GOLDEN.read_text()
