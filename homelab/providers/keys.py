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


def read_public_key(path: Path | str) -> str | None:
    """The public key line of a private key: its .pub beside it (if that is a valid key line),
    else derived from the private key itself. The one reader of the operator key."""
    from homelab.config.permissions import check_public_key  # pure validation, import-light

    path = Path(os.path.expanduser(str(path)))
    pub = path.with_name(path.name + ".pub")
    try:
        lines = pub.read_text().strip().splitlines()
    except OSError:
        lines = []
    if lines and check_public_key(" ".join(lines[0].split())) is None:
        return " ".join(lines[0].split())
    if not path.exists():
        return None
    data = path.read_bytes()
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except (ValueError, TypeError):
        try:  # an older PEM key ("BEGIN RSA PRIVATE KEY"), as ssh-keygen -m PEM writes
            key = serialization.load_pem_private_key(data, password=None)  # type: ignore[assignment]
        except (ValueError, TypeError):
            return None  # encrypted or unreadable: the agent may still hold it
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def md5_fingerprint(public_line: str) -> str:
    """The fingerprint Hetzner shows for SSH keys: colon-separated MD5 of the key blob."""
    blob = base64.b64decode(public_line.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def key_type(public_line: str) -> str:
    return public_line.split()[0] if public_line else "unknown"
