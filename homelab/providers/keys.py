"""Key material made on this machine: the operator key and cloud servers' SSH host keys.

ed25519 with `cryptography`, private keys in OpenSSH format (what ssh, paramiko and
cloud-init read). Files are created with mode 0600 from the first byte (O_EXCL, no window
where another user could read them).
"""
from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homelab.errors import HomelabError
from homelab.secrets import Secret


@dataclass(frozen=True)
class KeyPair:
    private_openssh: Secret  # "-----BEGIN OPENSSH PRIVATE KEY-----..."
    public: str  # "ssh-ed25519 AAAA..."


def generate_ed25519(comment: str = "") -> KeyPair:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return KeyPair(Secret(private), f"{public} {comment}".strip())


def write_key_pair(path: Path, pair: KeyPair) -> None:
    """Private key at `path` (0600, never overwritten), public key at `path`.pub (0644)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise HomelabError(f"generate key {path}: the file exists already", "homelab never overwrites a key") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(pair.private_openssh.reveal())
    pub = path.with_name(path.name + ".pub")
    pub.write_text(pair.public + "\n")
    os.chmod(pub, 0o644)


def read_public_key(path: Path) -> str | None:
    """The operator public key: from `path`.pub, else derived from the private key."""
    pub = path.with_name(path.name + ".pub")
    if pub.exists():
        text = pub.read_text().strip()
        if text:
            return text.splitlines()[0]
    if not path.exists():
        return None
    try:
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError):
        return None  # encrypted or unreadable: the agent may still hold it
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[union-attr]
                                         serialization.PublicFormat.OpenSSH).decode()


def md5_fingerprint(public_line: str) -> str:
    """The fingerprint Hetzner shows for SSH keys: colon-separated MD5 of the key blob."""
    blob = base64.b64decode(public_line.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def key_type(public_line: str) -> str:
    return public_line.split()[0] if public_line else "unknown"
