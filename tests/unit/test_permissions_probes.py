"""Layer 2 probes (valid shell, one batch) and their parsers; monitors from parsed views."""
from __future__ import annotations

import dataclasses
import subprocess

from homelab.layers.permissions.monitors import host_monitors
from homelab.layers.permissions.probes import (
    Account, FileState, parse_host, permission_probes, security_updates,
)
from homelab.model import Health
from homelab.probe import ProbeResult, parse_probe_output, render_probe_script
from test_permissions_fixtures import converged, fresh_view, inputs, perms


def test_probes_are_one_valid_script_with_quoted_names() -> None:
    probes = permission_probes(["alice", "bob", "root", "alice"])
    assert sorted(k for k in probes if k.startswith("permissions.keys:")) == [
        "permissions.keys:alice", "permissions.keys:bob", "permissions.keys:root"]
    script, _ = render_probe_script(probes)
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    assert "permissions.accounts" not in permission_probes([])


def test_probe_script_runs_and_parses_locally(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The read-only parts run here too (no sshd, no nft table): nothing breaks the parse."""
    probes = {k: v for k, v in permission_probes(["nobody-here"]).items() if k != "permissions.pending"}
    script, nonce = render_probe_script(probes)
    out = subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True, timeout=60).stdout
    view = parse_host(parse_probe_output(out, nonce))
    assert view.reachable and view.accounts["nobody-here"] == Account("nobody-here", False)
    assert view.keys["nobody-here"] == FileState(False) and not view.nft_same


def test_parse_host_from_real_looking_output() -> None:
    r = ProbeResult
    probed = {
        "permissions.openssh": r(0, "1:10.0p1-7"),
        "permissions.tools": r(0, "nft\nvisudo\nsystemd-run\nsshd\nflock"),
        "permissions.sshd_effective": r(0, "port 22\npermitrootlogin no\npasswordauthentication no\n"
                                           "kbdinteractiveauthentication no\n"
                                           "authorizedkeysfile /etc/ssh/homelab-keys/%u"),
        "permissions.file.sshd": r(0, "abc123\nPort 22\nPermitRootLogin no"),
        "permissions.file.nft": r(3, ""),
        "permissions.guard": r(0, "script aa\nunit bb\nfwunit \nenabled enabled\nfwenabled \nsshd confirmed 0011\n"
                                  "nft none"),
        "permissions.nft_live": r(0, "loaded\npolicy drop\nsame"),
        "permissions.sudoers": r(0, "homelab-alice 5e5e"),
        "permissions.accounts": r(0, "today 20300\nuser alice /bin/bash -\nuser carol /usr/sbin/nologin 1\n"
                                     "none bob"),
        "permissions.keys:alice": r(0, "ffff\n# Managed\nssh-ed25519 AAAA a"),
        "permissions.keys:bob": r(3, ""),
        "permissions.upgrades": r(0, "package ii \nconf 1234\ntimer enabled active"),
        "permissions.pending": r(0, "Inst libc6 [2.41-12] (2.41-12+deb13u1 Debian-Security:13/stable-security "
                                    "[amd64])\n"
                                    "Inst jq [1.7.1-5] (1.7.1-6 Debian:13.2/stable [amd64])"),
    }
    v = parse_host(probed)
    assert v.openssh == (10, 0) and "nft" in v.tools
    assert v.effective["permitrootlogin"] == ["no"]
    assert v.sshd_file == FileState(True, "abc123", "Port 22\nPermitRootLogin no") and not v.nft_file.exists
    assert v.guard["sshd"] == "confirmed 0011" and v.guard["fwunit"] == ""
    assert v.nft_loaded and v.nft_policy == "drop" and v.nft_same
    assert v.sudoers == {"alice": "5e5e"}
    assert v.accounts["carol"].expires == 1 and v.expired("carol") and not v.expired("alice")
    assert not v.accounts["bob"].exists
    assert v.keys["alice"].sha == "ffff" and not v.keys["bob"].exists
    assert v.upgrades == {"package": "ii", "conf": "1234", "timer": "enabled active"}
    assert security_updates(v.pending) == ["libc6"]
    assert not parse_host(None).reachable


def monitors(view, login_user: str = "alice", unreachable: str | None = None):  # type: ignore[no-untyped-def]
    return {m.name: m for m in host_monitors("web-1", perms(), view, login_user, unreachable)}


def test_monitors_of_a_converged_host_are_ok() -> None:
    cfg = perms()
    view = converged(cfg, inputs(), fresh_view())
    got = monitors(view)
    assert {n: m.health for n, m in got.items()} == {
        "admin login": Health.OK, "root login": Health.OK, "password login": Health.OK, "firewall": Health.OK,
        "upgrades": Health.OK}
    assert got["root login"].reason == "refused (sshd -T: permitrootlogin no)"
    assert got["admin login"].reason == "new login as alice with sudo works"


def test_monitors_say_what_is_wrong() -> None:
    view = fresh_view()
    got = monitors(view, login_user="admin")
    assert got["admin login"].health == Health.WARN
    assert got["root login"].health == Health.FAIL and "without-password" in got["root login"].reason
    assert got["password login"].health == Health.FAIL
    assert got["firewall"].health == Health.FAIL and "not loaded" in got["firewall"].reason
    assert got["upgrades"].health == Health.FAIL
    conv = converged(perms(), inputs(), fresh_view())
    drift = monitors(dataclasses.replace(conv, nft_same=False))
    assert drift["firewall"].health == Health.WARN and "outside homelab" in drift["firewall"].reason
    sec = monitors(dataclasses.replace(conv, pending=("Inst openssl [3] (3.1 Debian-Security:13/stable-security)",)))
    assert sec["upgrades"].health == Health.WARN and sec["upgrades"].reason == "1 security updates pending: openssl"
    masked = monitors(dataclasses.replace(conv, upgrades={**conv.upgrades, "timer": "masked inactive"}))
    assert masked["upgrades"].health == Health.WARN and "never run" in masked["upgrades"].reason
    other = monitors(dataclasses.replace(conv, effective={**conv.effective, "passwordauthentication": ["yes"]}))
    assert other["password login"].health == Health.FAIL and other["sshd config"].health == Health.WARN
    down = monitors(conv, unreachable="connect: timed out")
    assert list(down) == ["admin login"] and down["admin login"].health == Health.FAIL
