"""Layer 0: operator key generation, key upload and token verdicts, monitors. Pure + local files."""
from __future__ import annotations

import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from homelab.hosts import LOCAL, HostTarget
from homelab.layers.privilege import Seen, TokenSeen, count_pinned, diff_privilege, privilege_monitors
from homelab.model import Health
from homelab.providers.keys import generate_ed25519, md5_fingerprint, read_public_key, write_key_pair

PUB = generate_ed25519("op").public
RW = TokenSeen(True, True, "read-write")


def seen(**kw: object) -> Seen:
    base: dict[str, object] = {"key_path": "/k/id", "public_key": PUB, "agent_keys": 0, "hetzner": True,
                               "token": RW, "cloud_key": None, "pinned": 2, "hosts": 2}
    base.update(kw)
    return Seen(**base)  # type: ignore[arg-type]


def test_generated_key_is_openssh_ed25519_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "id_ed25519"
    pair = generate_ed25519("me@here")
    write_key_pair(path, pair)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key = serialization.load_ssh_private_key(text.encode(), None)
    assert key.public_key().public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[union-attr]
                                         serialization.PublicFormat.OpenSSH).decode() == " ".join(pair.public.split()[:2])
    assert read_public_key(path) == pair.public
    assert "PRIVATE" not in repr(pair) and "PRIVATE" not in str(pair.private_openssh)


def test_an_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "id"
    path.write_text("mine")
    try:
        write_key_pair(path, generate_ed25519())
    except Exception as exc:  # noqa: BLE001
        assert "never overwrites" in getattr(exc, "hint", "")
    assert path.read_text() == "mine"


def test_missing_key_is_generated_then_uploaded() -> None:
    plan = diff_privilege(seen(public_key=None), generate=True, key_name="homelab-operator")
    assert [(c.summary, c.ops[0].name) for c in plan.changes] == [
        ("generate ed25519 key /k/id (0600)", "local.generate_key"),
        ("upload operator public key (generated above) to Hetzner as 'homelab-operator'", "hetzner.create_ssh_key")]
    assert not plan.blocked


def test_missing_key_without_generate_blocks_cloud_configs_only() -> None:
    cloud = diff_privilege(seen(public_key=None), generate=False, key_name="k")
    assert cloud.blocked and "set privilege.generate_key: true" in cloud.blocked[0]
    local = diff_privilege(seen(public_key=None, hetzner=False, token=None), generate=False, key_name="k")
    assert not local.blocked and local.warnings
    agent = diff_privilege(seen(public_key=None, agent_keys=1), generate=False, key_name="k")
    assert not agent.blocked and not agent.changes


def test_uploaded_key_plans_nothing() -> None:
    plan = diff_privilege(seen(cloud_key={"id": 1, "name": "old-name", "fingerprint": md5_fingerprint(PUB)}),
                          generate=False, key_name="homelab-operator")
    assert plan.changes == () and "operator key is in the Hetzner project as 'old-name'" in plan.unchanged


def test_bad_or_read_only_token_blocks() -> None:
    bad = diff_privilege(seen(token=TokenSeen(False, False, "check token: the Hetzner API refused the token")),
                         generate=False, key_name="k")
    assert bad.blocked == ("Hetzner API token: check token: the Hetzner API refused the token",)
    ro = diff_privilege(seen(token=TokenSeen(True, False, "read-only token")), generate=False, key_name="k")
    assert "not read-write" in ro.blocked[0]


def test_monitors() -> None:
    ms = {m.name: m for m in privilege_monitors(seen(pinned=1, hosts=3))}
    assert ms["key"].health is Health.OK and ms["key"].reason == "ssh-ed25519 at /k/id"
    assert ms["API token"].health is Health.OK and ms["API token"].reason == "valid, read-write"
    assert ms["operator key uploaded"].health is Health.WARN
    assert ms["host keys pinned"].health is Health.WARN and ms["host keys pinned"].reason == "1 of 3"
    ro = {m.name: m for m in privilege_monitors(seen(token=TokenSeen(True, False, "read-only token")))}
    assert ro["API token"].health is Health.FAIL and ro["API token"].reason == "read-only token"
    nokey = {m.name: m for m in privilege_monitors(seen(public_key=None, hetzner=False, token=None))}
    assert nokey["key"].health is Health.FAIL and "API token" not in nokey


def test_a_machine_provisioned_in_place_has_no_host_key_to_pin() -> None:
    targets = [HostTarget("in-place", LOCAL), HostTarget("pi", "10.0.0.2"), HostTarget("nas", "10.0.0.3")]
    learned = {"pi": {"host_key": "ssh-ed25519 AAAA"}, "in-place": {"facts": {}}}
    assert count_pinned(targets, learned) == (1, 2)
    pinned, hosts = count_pinned(targets[:1], learned)  # the one-off server alone
    (monitor,) = [m for m in privilege_monitors(Seen("k", "ssh-ed25519 AAAA", 0, False, pinned=pinned, hosts=hosts))
                  if m.name == "host keys pinned"]
    assert monitor.health is Health.OK and monitor.reason == "0 of 0"
