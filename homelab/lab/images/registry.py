"""The lab registry: Debian's `docker-registry` (distribution 2.8) serving the lab images.

It runs on the outer machine, bound to the lab bridge address next to the apt repo server
(`labrepo:5000` from every host, /etc/hosts names it), rather than on a lab host: it then
lives as long as the lab (not a host that a test resets), every host reaches it the same way
(also hosts behind the NAT router), and its storage sits in the shared cache so images are
pushed once and served by every lab. The binary is taken from the lab's own apt pool (the
`docker-registry` .deb), so the outer machine needs no extra package.

TLS with a lab CA, not an insecure registry: Docker trusts a registry's CA from
/etc/docker/certs.d/<host:port>/ca.crt, which the lab writes into each host's disk, so
homelab's own /etc/docker/daemon.json stays homelab's (an `insecure-registries` entry would
have to live in that file). The CA is shared by labs (cache); each lab's server certificate
names `labrepo` and its bridge address.

Images go in with the registry HTTP API (distribution spec: monolithic blob upload, manifest
PUT), the same protocol `docker push` speaks.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from homelab.lab.config import LabError
from homelab.lab.system import run

log = logging.getLogger("homelab.lab")

REGISTRY_PORT = 5000
REGISTRY_NAME = "labrepo"  # what hosts call the outer machine (their /etc/hosts)
CERTS_D = f"etc/docker/certs.d/{REGISTRY_NAME}:{REGISTRY_PORT}/ca.crt"  # in a host's root


@dataclass(frozen=True)
class RegistryPaths:
    """Files of the registry: shared ones in the cache, per-lab ones in the lab's run dir."""

    cache: Path
    run_dir: Path

    @property
    def storage(self) -> Path:
        return self.cache / "registry" / "storage"

    @property
    def ca_cert(self) -> Path:
        return self.cache / "registry" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.cache / "registry" / "ca.key"

    @property
    def bin_dir(self) -> Path:
        return self.cache / "registry" / "bin"

    @property
    def cert(self) -> Path:
        return self.run_dir / "registry.crt"

    @property
    def key(self) -> Path:
        return self.run_dir / "registry.key"

    @property
    def config(self) -> Path:
        return self.run_dir / "registry.yml"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "registry.pid"

    @property
    def cgroups_file(self) -> Path:
        return self.run_dir / "registry.cgroups"

    @property
    def logfile(self) -> Path:
        return self.run_dir / "registry.log"


def render_config(addr: str, storage: Path, cert: Path, key: str | Path) -> str:
    """distribution's config.yml (JSON is YAML): filesystem storage, TLS, deletes allowed."""
    cfg = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": addr, "tls": {"certificate": str(cert), "key": str(key)},
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    return json.dumps(cfg, indent=1) + "\n"


# ------------------------------------------------------------------ binary ----

def registry_binary(paths: RegistryPaths, pools: list[Path]) -> Path:
    """docker-registry from the lab's apt pool, unpacked once into the cache."""
    debs = sorted(d for pool in pools for d in pool.glob("docker-registry_*.deb"))
    if not debs:
        raise LabError("no docker-registry .deb in the lab's apt pool", "keep docker-registry in LAB_PACKAGES")
    deb = debs[-1]
    dest = paths.bin_dir / deb.stem
    exe = dest / "usr/bin/docker-registry"
    if not exe.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        run(["dpkg-deb", "-x", str(deb), str(dest)], what="unpack docker-registry")
    return exe


# --------------------------------------------------------------------- TLS ----

def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def ensure_ca(paths: RegistryPaths) -> bytes:
    """The lab registry CA (made once per cache); returns its PEM certificate."""
    if paths.ca_cert.is_file() and paths.ca_key.is_file():
        return paths.ca_cert.read_bytes()
    paths.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "homelab lab registry CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    _write_private(paths.ca_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    paths.ca_cert.write_bytes(pem)
    return pem


def issue_server_cert(paths: RegistryPaths, names: list[str], ips: list[str]) -> None:
    """A server certificate for this lab's registry, signed by the lab CA."""
    ensure_ca(paths)
    ca_key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    _write_private(paths.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + paths.ca_cert.read_bytes())


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)


def ssl_context(paths: RegistryPaths) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(paths.ca_cert))


# ------------------------------------------------------------------ client ----

class RegistryClient:
    """The registry HTTP API (v2) for what the lab needs: check, upload, tag."""

    def __init__(self, base_url: str, context: ssl.SSLContext, timeout: float = 120) -> None:
        self.base = base_url.rstrip("/")
        self.context = context
        self.timeout = timeout

    def _request(self, method: str, url: str, body: bytes | IO[bytes] | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        if not url.startswith("http"):
            url = self.base + url
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def ping(self) -> bool:
        try:
            return self._request("GET", "/v2/")[0] == 200
        except OSError:
            return False

    def manifest_digest(self, repo: str, ref: str, media_type: str) -> str | None:
        status, headers, _ = self._request("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": media_type})
        return headers.get("Docker-Content-Digest") if status == 200 else None

    def has_blob(self, repo: str, digest: str) -> bool:
        return self._request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200

    def upload_blob(self, repo: str, digest: str, path: Path) -> None:
        if self.has_blob(repo, digest):
            return
        status, headers, body = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        if status != 202 or "Location" not in headers:
            raise LabError(f"registry: start upload to {repo}: HTTP {status} {body[:200]!r}")
        location = urllib.parse.urljoin(self.base + "/", headers["Location"])
        sep = "&" if "?" in location else "?"
        size = path.stat().st_size
        with open(path, "rb") as f:
            status, _, body = self._request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", body=f,
                                            headers={"Content-Type": "application/octet-stream",
                                                     "Content-Length": str(size)})
        if status != 201:
            raise LabError(f"registry: upload {digest[:19]} to {repo}: HTTP {status} {body[:200]!r}")

    def put_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> str:
        status, headers, body = self._request("PUT", f"/v2/{repo}/manifests/{tag}", body=data,
                                              headers={"Content-Type": media_type})
        if status != 201:
            raise LabError(f"registry: tag {repo}:{tag}: HTTP {status} {body[:300]!r}")
        return headers.get("Docker-Content-Digest", "")


def wait_ready(client: RegistryClient, proc: subprocess.Popen[bytes], logfile: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not client.ping():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = logfile.read_text(errors="replace").strip().splitlines()[-3:] if logfile.exists() else []
            raise LabError(f"lab registry at {client.base} did not start: " + " | ".join(tail),
                           f"is port {REGISTRY_PORT} taken? (ss -ltnp); log: {logfile}")
        time.sleep(0.1)
