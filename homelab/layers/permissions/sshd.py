"""sshd hardening: the drop-in we render (pure) and what `sshd -T` says is in force.

Debian's sshd_config starts with `Include /etc/ssh/sshd_config.d/*.conf` and for most options
the FIRST value read wins, so our drop-in is named `10-...` to sort before the usual
`50-cloud-init.conf`. Whether another file still overrides us is read back from the
effective config (`sshd -T`), never guessed from the files.

Algorithms: only what `ssh-audit` rates without a failure, and what OpenSSH of the host knows
(an unknown name makes sshd refuse the whole file):
  * host key: ssh-ed25519 only (ssh-audit fails the NIST ecdsa curves; RSA needs >= 3072 bits
    and SHA-2, one more thing to get wrong). The host key pinned in state is ed25519 (ssh.py
    asks for it first), so the pin stays valid.
  * kex: post-quantum hybrids first (sntrup761 since 8.5, mlkem768 since 9.9), then
    curve25519, which paramiko (homelab itself, pyinfra) needs.
  * ciphers: chacha20-poly1305 and AES-GCM; MACs: encrypt-then-MAC only.
OpenSSH 9.2 is Debian 12, 10.0 is Debian 13.
"""
from __future__ import annotations

import re

from homelab.config.permissions import SshdSettings
from homelab.probe import ProbeResult
from homelab.provision.guard import DROPIN as DROPIN  # re-exported: the layer's modules read it here

KEYS_DIR = "/etc/ssh/homelab-keys"  # root-owned authorized_keys, one file per user (%u)
DEFAULT_OPENSSH = (10, 0)  # assumed for hosts not reachable yet (plan of a new server)

HOST_KEY_ALGORITHMS = ("ssh-ed25519",)
CIPHERS = ("chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com")
MACS = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com")
# user keys we accept (the key types config/permissions.py lets through; ssh-rsa keys sign with SHA-2)
PUBKEY_ALGORITHMS = ("ssh-ed25519", "sk-ssh-ed25519@openssh.com", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                     "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256")


def kex_algorithms(openssh: tuple[int, int]) -> tuple[str, ...]:
    """Key exchange names this OpenSSH version knows, strongest first."""
    out: list[str] = []
    if openssh >= (9, 9):
        out += ["mlkem768x25519-sha256", "sntrup761x25519-sha512"]
    if openssh >= (8, 5):
        out.append("sntrup761x25519-sha512@openssh.com")
    return tuple(out + ["curve25519-sha256", "curve25519-sha256@libssh.org"])


def root_login_value(s: SshdSettings) -> str:
    if not s.root_login:
        return "no"
    return "yes" if s.password_login else "prohibit-password"


def render_sshd_dropin(s: SshdSettings, openssh: tuple[int, int]) -> str:
    """The whole drop-in, for a host running OpenSSH `openssh` (major, minor)."""
    pubkey_option = "PubkeyAcceptedAlgorithms" if openssh >= (8, 5) else "PubkeyAcceptedKeyTypes"
    lines = [
        "# Managed by homelab (layer 2, permissions): edits are overwritten on the next apply.",
        "# Checked with `sshd -t` before it replaced the previous file, and kept only after a",
        "# new SSH login succeeded (homelab-guard).",
        f"Port {s.port}",
        "",
        "# who may log in, and how",
        f"PermitRootLogin {root_login_value(s)}",
        f"PasswordAuthentication {'yes' if s.password_login else 'no'}",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "PubkeyAuthentication yes",
    ]
    if not s.password_login:
        lines.append("AuthenticationMethods publickey")
    lines += [
        "# keys live in root-owned files written by homelab: a user cannot add a key for",
        "# themselves, and removing a user from the config removes their access",
        f"AuthorizedKeysFile {KEYS_DIR}/%u",
        "PermitUserEnvironment no",
        "MaxAuthTries 3",
        "LoginGraceTime 30",
        "",
        "# modern algorithms only (ssh-audit: no failures)",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        f"HostKeyAlgorithms {','.join(HOST_KEY_ALGORITHMS)}",
        f"KexAlgorithms {','.join(kex_algorithms(openssh))}",
        f"Ciphers {','.join(CIPHERS)}",
        f"MACs {','.join(MACS)}",
        f"{pubkey_option} {','.join(PUBKEY_ALGORITHMS)}",
        "",
        "# less to abuse",
        "X11Forwarding no",
        "AllowAgentForwarding no",
        "PermitTunnel no",
        "DebianBanner no",
        "ClientAliveInterval 300",
        "ClientAliveCountMax 2",
        "# log key fingerprints of logins",
        "LogLevel VERBOSE",
    ]
    return "\n".join(lines) + "\n"


_VERSION = re.compile(r"(?:^|[:_ ])(\d+)\.(\d+)p")


def parse_openssh_version(text: str) -> tuple[int, int] | None:
    """From `dpkg-query` ("1:10.0p1-7") or `ssh -V` ("OpenSSH_9.2p1 Debian-2")."""
    m = _VERSION.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_effective(result: ProbeResult | None) -> dict[str, list[str]]:
    """`sshd -T` lines -> {option: [values]} (Port and friends can repeat)."""
    out: dict[str, list[str]] = {}
    if result is None or not result.ok:
        return out
    for line in result.lines():
        key, _, value = line.strip().partition(" ")
        if key and value and key.isalnum():
            out.setdefault(key.lower(), []).append(value.strip())
    return out


def effective_ports(effective: dict[str, list[str]]) -> set[int]:
    return {int(p) for p in effective.get("port", []) if p.isdigit()}


def hardening_problems(effective: dict[str, list[str]], s: SshdSettings) -> list[str]:
    """What the config in force does differently from what we asked for ([] = all as wanted)."""
    want = {
        "permitrootlogin": root_login_value(s),
        "passwordauthentication": "yes" if s.password_login else "no",
        "kbdinteractiveauthentication": "no",
        "authorizedkeysfile": f"{KEYS_DIR}/%u",
    }
    out = []
    for key, value in want.items():
        have = effective.get(key)
        if have is None:
            continue  # older sshd without this option name
        # sshd -T prints the old spelling of prohibit-password
        if have[0] != value and {have[0], value} != {"without-password", "prohibit-password"}:
            out.append(f"{key} is {have[0]}, want {value}")
    return out
