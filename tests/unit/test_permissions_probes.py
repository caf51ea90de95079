"""Layer 2 probes (valid shell, one batch) and their parsers; monitors from parsed views."""
from __future__ import annotations

import dataclasses
import hashlib
import subprocess

from homelab.layers.permissions.monitors import host_monitors
from homelab.layers.permissions.probes import (
    Account, FileState, parse_host, permission_probes, security_updates,
)
from homelab.model import Health
from homelab.probe import ProbeResult, parse_probe_output, parse_sha256, render_probe_script
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
    sha = {c: c * 64 for c in "abcdef"}
    probed = {
        # the host's batched package answer (other layers' packages in it too), no `ssh -V`
        "permissions.packages": r(0, "curl ii  8.14\nopenssh-server ii  1:10.0p1-7\nunattended-upgrades ii  2.12"),
        "permissions.openssh": r(0, ""),
        "permissions.tools": r(0, "nft\nvisudo\nsystemd-run\nsshd\nflock"),
        "permissions.sshd_effective": r(0, "port 22\npermitrootlogin no\npasswordauthentication no\n"
                                           "kbdinteractiveauthentication no\n"
                                           "authorizedkeysfile /etc/ssh/homelab-keys/%u"),
        "permissions.file.sshd": r(0, "Port 22\nPermitRootLogin no\n|"),
        "permissions.file.nft": r(3, ""),
        "permissions.hashes": r(0, f"{sha['a']}  /usr/local/sbin/homelab-guard\n"
                                   f"{sha['b']}  /etc/systemd/system/homelab-guard.service\n"
                                   f"{sha['c']}  /etc/apt/apt.conf.d/20auto-upgrades\n"
                                   f"{sha['d']}  /etc/sudoers.d/homelab-alice"),
        "permissions.units": r(0, "\n\n".join(  # as `systemctl show` prints them
            f"Id={u}\nLoadState={load}\nUnitFileState={f}\nActiveState={a}" for u, load, f, a in [
                ("homelab-guard.service", "loaded", "enabled", "active"),
                ("homelab-firewall.service", "not-found", "", "inactive"),
                ("apt-daily.timer", "loaded", "enabled", "active"),
                ("apt-daily-upgrade.timer", "masked", "masked", "inactive")])),
        "permissions.guard": r(0, "sshd confirmed 0011\nnft none"),
        "permissions.nft_live": r(0, "loaded\npolicy drop\nsame"),
        "permissions.accounts": r(0, "today 20300\nwant alice bob carol\n"
                                     "alice:x:1001:1001:Alice:/home/alice:/bin/bash\n"
                                     "carol:x:1003:1003::/home/carol:/usr/sbin/nologin\nalice:\ncarol:1"),
        "permissions.keys:alice": r(0, "# Managed\nssh-ed25519 AAAA a\n|"),
        "permissions.keys:bob": r(3, ""),
        "permissions.pending": r(0, "Inst libc6 [2.41-12] (2.41-12+deb13u1 Debian-Security:13/stable-security "
                                    "[amd64])\n"
                                    "Inst jq [1.7.1-5] (1.7.1-6 Debian:13.2/stable [amd64])"),
    }
    v = parse_host(probed)
    assert v.openssh == (10, 0) and "nft" in v.tools
    assert v.effective["permitrootlogin"] == ["no"]
    text = "Port 22\nPermitRootLogin no\n"  # exact: its last newline is kept
    assert v.sshd_file == FileState(True, hashlib.sha256(text.encode()).hexdigest(), text) and not v.nft_file.exists
    assert v.guard == {"script": sha["a"], "unit": sha["b"], "enabled": "enabled", "fwenabled": "not-found",
                       "sshd": "confirmed 0011", "nft": "none"}
    assert v.nft_loaded and v.nft_policy == "drop" and v.nft_same
    assert v.sudoers == {"alice": sha["d"]}
    assert v.accounts["carol"].expires == 1 and v.expired("carol") and not v.expired("alice")
    assert v.accounts["alice"] == Account("alice", True, "/bin/bash", None)
    assert not v.accounts["bob"].exists
    assert v.keys["alice"].text == "# Managed\nssh-ed25519 AAAA a\n" and not v.keys["bob"].exists
    assert v.upgrades == {"package": "ii", "conf": sha["c"], "dltimer": "enabled active", "timer": "masked inactive"}
    assert security_updates(v.pending) == ["libc6"]
    assert not parse_host(None).reachable
    bare = parse_host({"permissions.packages": r(0, "openssh-server un  \n"),
                       "permissions.openssh": r(0, "OpenSSH_9.2p1 Debian-2, OpenSSL 3.0.11")})
    assert bare.openssh == (9, 2) and bare.upgrades == {"package": ""}  # OpenSSH not from Debian's package


def test_probes_read_what_the_host_really_has(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The file, hash and account probes run here against real files and this machine's
    getent: content comes back byte for byte, hashes are sha256sum's own."""
    import hashlib as h
    from homelab.layers.permissions import probes as mod

    managed = tmp_path / "managed"
    managed.write_text("a\n\nb\n\n")  # trailing blank lines: the transport must not eat them
    sudo = tmp_path / "homelab-alice"
    sudo.write_text("alice ALL=(ALL) NOPASSWD: ALL\n")
    got = {
        "permissions.file.sshd": mod._file(str(managed)),
        "permissions.file.nft": mod._file(str(tmp_path / "absent")),
        "permissions.hashes": f"sha256sum {tmp_path}/homelab-* 2>/dev/null; true",
        "permissions.accounts": permission_probes(["root", "nobody-here"])["permissions.accounts"],
    }
    script, nonce = render_probe_script(got)
    out = subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True, timeout=60).stdout
    probed = parse_probe_output(out, nonce)
    view = parse_host(probed)
    assert view.sshd_file.text == "a\n\nb\n\n" and view.sshd_file.sha == h.sha256(b"a\n\nb\n\n").hexdigest()
    assert not view.nft_file.exists
    assert parse_sha256(probed["permissions.hashes"]) == {str(sudo): h.sha256(sudo.read_bytes()).hexdigest()}
    assert view.accounts["root"].exists and view.accounts["root"].shell.startswith("/")
    assert not view.accounts["nobody-here"].exists and view.today > 20000


def test_the_guard_state_read_answers_as_the_guard_script_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The no-op reads the guard's state with builtins; `homelab-guard status` is the truth."""
    from homelab.provision.guard import GUARD_DIR, GUARD_SCRIPT, STATES, status_read

    d = tmp_path / "guard"
    script = tmp_path / "homelab-guard"
    script.write_text(GUARD_SCRIPT.replace(GUARD_DIR, str(d)))
    read = status_read().replace(GUARD_DIR, str(d))
    cases = [{}, {"sshd.pending": "aa11"}, {"sshd.reverted": "bb22", "nft.confirmed": "cc33"},
             {"nft.pending": "dd44", "nft.confirmed": "ee55"}]  # pending wins, as in the script
    assert STATES == ("pending", "reverted", "confirmed")
    for files in cases:
        d.mkdir(exist_ok=True)
        for f in d.iterdir():
            f.unlink()
        for name, token in files.items():
            (d / name).write_text(token + "\n")
        truth = "".join(f"{k} " + subprocess.run(["sh", str(script), "status", k], capture_output=True, text=True,
                                                  check=True).stdout for k in ("sshd", "nft"))
        assert subprocess.run(["sh", "-c", read], capture_output=True, text=True, check=True).stdout == truth, files


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
