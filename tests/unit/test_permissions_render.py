"""Rendered files of layer 2 against golden files (sshd drop-in, nft rule set); the guard script.

Regenerate the golden files after an intended change with HOMELAB_UPDATE_GOLDEN=1 and review
the diff like code. Where this machine can check a file for real (nft -c as root, sh -n),
it does.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from golden import assert_golden

from homelab.claims import Claims, OpenPort, TrustInterface
from homelab.config.permissions import SshdSettings
from homelab.layers.permissions.firewall import FirewallSpec, firewall_spec, render_nft_ruleset
from homelab.provision.guard import GUARD_SCRIPT, guarded_ops, token
from homelab.layers.permissions.sshd import (
    CIPHERS, HOST_KEY_ALGORITHMS, MACS, kex_algorithms, parse_openssh_version, render_sshd_dropin,
)
from test_permissions_fixtures import BASE, MESH, config, mesh_claims

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "permissions"

SSHD_CASES = {
    "sshd-debian13.conf": (SshdSettings(), (10, 0)),
    "sshd-debian12.conf": (SshdSettings(), (9, 2)),
    "sshd-openssh84.conf": (SshdSettings(), (8, 4)),
    "sshd-root-and-password-port2222.conf": (SshdSettings(port=2222, password_login=True, root_login=True), (10, 0)),
}

NFT_CASES = {
    "nft-minimal.nft": FirewallSpec("pi-1", (22,)),
    "nft-full.nft": FirewallSpec("web-1", (2222,), open_ports=(
        OpenPort("mesh", "mesh.port", "web-1", "udp", 51820, why="WireGuard mesh"),
        OpenPort("permissions", "p", "web-1", "tcp", 80, why="ingress", forwarded=True),
        OpenPort("permissions", "p", "web-1", "tcp", 443, why="ingress", forwarded=True),
        OpenPort("permissions", "p", "web-1", "udp", 443, why="ingress HTTP/3", forwarded=True),
        OpenPort("permissions", "p", "web-1", "tcp", 9100, source="10.100.0.0/24", why="allow[0]", forwarded=True),
        OpenPort("permissions", "p", "web-1", "udp", 60000, 61000, why="allow[1]", forwarded=True),
        OpenPort("permissions", "p", "web-1", "udp", 53, source="2001:db8::/32", why="allow[2]", forwarded=True),
    ), trusted=("wg0",)),
    "nft-sshd-moving.nft": FirewallSpec("nas", (22, 2222)),
}


def golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


@pytest.mark.parametrize("name", sorted(SSHD_CASES))
def test_sshd_dropin_golden(name: str) -> None:
    settings, version = SSHD_CASES[name]
    golden(name, render_sshd_dropin(settings, version))


@pytest.mark.parametrize("name", sorted(NFT_CASES))
def test_nft_ruleset_golden(name: str) -> None:
    golden(name, render_nft_ruleset(NFT_CASES[name]))


def test_guard_script_is_valid_shell() -> None:
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            subprocess.run([shell, "-n"], input=GUARD_SCRIPT, text=True, check=True)


def test_golden_dir_has_no_stale_files() -> None:
    expected = set(SSHD_CASES) | set(NFT_CASES)
    assert {p.name for p in GOLDEN.iterdir()} == expected


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="nft -c needs root and nft")
@pytest.mark.parametrize("name", sorted(NFT_CASES))
def test_nft_rulesets_pass_nft_check(name: str, tmp_path: Path) -> None:
    """`nft -c` parses and validates against the kernel without changing anything."""
    path = tmp_path / name
    path.write_text(render_nft_ruleset(NFT_CASES[name]))
    out = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_algorithms_are_only_what_ssh_audit_rates_without_failure() -> None:
    assert HOST_KEY_ALGORITHMS == ("ssh-ed25519",)
    assert not any("nistp" in a or a.startswith("diffie-hellman-group1-") or "sha1" in a
                   for a in (*kex_algorithms((10, 0)), *HOST_KEY_ALGORITHMS))
    assert all(m.endswith("-etm@openssh.com") for m in MACS)
    assert all("gcm" in c or "chacha20" in c for c in CIPHERS)
    # paramiko (homelab and pyinfra) speaks curve25519-sha256@libssh.org and AES-GCM
    assert "curve25519-sha256@libssh.org" in kex_algorithms((9, 2)) and "aes256-gcm@openssh.com" in CIPHERS


def test_kex_follows_the_openssh_version() -> None:
    assert kex_algorithms((9, 2))[0] == "sntrup761x25519-sha512@openssh.com"
    assert "mlkem768x25519-sha256" not in kex_algorithms((9, 2))
    assert kex_algorithms((10, 0))[:2] == ("mlkem768x25519-sha256", "sntrup761x25519-sha512")
    assert kex_algorithms((8, 4)) == ("curve25519-sha256", "curve25519-sha256@libssh.org")


def test_openssh_version_parsing() -> None:
    assert parse_openssh_version("1:10.0p1-7") == (10, 0)
    assert parse_openssh_version("1:9.2p1-2+deb12u7") == (9, 2)
    assert parse_openssh_version("OpenSSH_9.2p1 Debian-2+deb12u7, OpenSSL 3.0.17") == (9, 2)
    assert parse_openssh_version("dpkg-query: no packages found") is None


def test_mesh_claims_open_its_port_only_where_peers_dial_in() -> None:
    claims = mesh_claims()
    assert [(c.proto, c.port, c.why) for c in claims.of(OpenPort, "web-1")][:1] == [("udp", 51820, "WireGuard mesh")]
    assert [c.port for c in claims.of(OpenPort, "pi-1") if c.owner == "mesh"] == []  # behind NAT: nobody dials it
    assert [c.interface for c in claims.of(TrustInterface, "pi-1")] == ["wg0"]


def test_the_real_mesh_config_claims_its_own_port() -> None:
    cfg = config(BASE + "mesh:\n  port: 51821\n  nodes:\n    - {name: web-1, endpoint: 203.0.113.7}\n"
                 "    - {name: pi-1}\n")
    text = render_nft_ruleset(firewall_spec("web-1", (22,), cfg.claims))
    assert 'udp dport 51821 accept comment "WireGuard mesh"' in text and 'iifname "wg0" accept' in text
    assert "51821" not in render_nft_ruleset(firewall_spec("pi-1", (22,), cfg.claims))


def test_no_mesh_no_mesh_rules() -> None:
    text = render_nft_ruleset(firewall_spec("web-1", (22,), config().claims))
    assert "WireGuard" not in text and "wg0" not in text


def test_a_port_claimed_by_two_layers_is_a_config_error_at_both_places() -> None:
    from homelab.errors import ConfigError

    text = BASE.replace("{port: 9100, from: 10.100.0.0/24}", "{port: 51820, proto: udp}") + MESH
    with pytest.raises(ConfigError) as err:
        config(text)
    rendered = err.value.render()
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "51820, proto: udp" in ln)
    assert f"c.yaml:{line}:" in rendered and "claimed by mesh" in rendered and "mesh.port" in rendered


def test_ingress_and_allow_rules_also_guard_docker_published_ports() -> None:
    text = render_nft_ruleset(firewall_spec("web-1", (22,), config().claims))
    assert "meta l4proto tcp ct original proto-dst { 80, 443 } accept" in text
    assert "ip saddr 10.100.0.0/24 meta l4proto tcp ct original proto-dst 9100 accept" in text
    other = render_nft_ruleset(firewall_spec("pi-1", (22,), config().claims))
    assert "{ 80, 443 }" not in other and "\t\tdrop\n" in other


def test_guarded_ops_stage_then_arm_and_confirm_in_one_operation() -> None:
    ops = guarded_ops("sshd", "Port 22\n", 90, {"host": "h1"})
    assert [o.name for o in ops] == ["files.put_text", "homelab.guarded_apply"]
    assert ops[0].kwargs["dest"] == "/var/lib/homelab/guard/sshd.new" and ops[0].kwargs["mode"] == "600"
    assert ops[1].kwargs["spec"] == {"host": "h1", "kind": "sshd", "token": token("Port 22\n"), "window": 90}
    with pytest.raises(ValueError):
        guarded_ops("iptables", "", 90, {})
