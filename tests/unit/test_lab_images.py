"""The lab images' pure parts: mirror mapping, catalog, layers/configs/manifests, registry config,
and the Anubis stand-in's HTTP contract (run on loopback, no lab needed)."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from homelab.lab.config import packages_for
from homelab.lab.images import oci
from homelab.lab.images.build import file_text, spec_hash, version_matches
from homelab.lab.images.catalog import CATALOG, IMAGE_SUITE, spec
from homelab.lab.images.publish import lab_ref
from homelab.lab.images.refs import ImageRef, mirror_path, mirror_ref, parse_ref
from homelab.lab.images.registry import render_config

# ----------------------------------------------------------------- refs ----


def test_mirror_keeps_upstream_paths() -> None:
    assert mirror_ref("docker.io/syncthing/syncthing:1.29", "labrepo:5000") == "labrepo:5000/syncthing/syncthing:1.29"
    assert mirror_ref("postgres:17", "labrepo:5000") == "labrepo:5000/library/postgres:17"
    assert mirror_ref("ghcr.io/miniflux/miniflux:2.2.6", "labrepo:5000") == "labrepo:5000/ghcr.io/miniflux/miniflux:2.2.6"
    assert mirror_ref("index.docker.io/valkey/valkey", "mirror.lan/hub") == "mirror.lan/hub/valkey/valkey:latest"
    digest = "sha256:" + "a" * 64
    assert mirror_ref(f"ghcr.io/techarohq/anubis:v1.27.0@{digest}", "labrepo:5000") == (
        f"labrepo:5000/ghcr.io/techarohq/anubis:v1.27.0@{digest}")
    assert mirror_path("localhost:5000/x/y:1") == "localhost:5000/x/y"


def test_parse_ref_normalises_like_docker() -> None:
    assert parse_ref("valkey/valkey:8") == ImageRef("docker.io", "valkey/valkey", "8")
    assert parse_ref("registry-1.docker.io/library/postgres") == ImageRef("docker.io", "library/postgres", "latest")
    assert str(parse_ref("ghcr.io/a/b@sha256:" + "0" * 64)) == "ghcr.io/a/b@sha256:" + "0" * 64
    for bad in ("Upper/case:1", "a/b:bad tag", "a@sha256:short", "ghcr.io/"):
        with pytest.raises(ValueError):
            parse_ref(bad)


# -------------------------------------------------------------- catalog ----


def test_catalog_names_each_image_and_its_tags() -> None:
    assert set(CATALOG) == {"syncthing", "radicale", "radicale-tomsquest", "postgres", "valkey", "miniflux", "anubis", "whoami"}
    assert lab_ref(spec("radicale")) == "labrepo:5000/ghcr.io/kozea/radicale:3.7.8"
    assert spec("miniflux").also_as == ("docker.io/miniflux/miniflux",)
    assert spec("postgres").ref == "docker.io/library/postgres:17.12"
    assert lab_ref(spec("postgres")) == "labrepo:5000/library/postgres:17.12"
    assert lab_ref(spec("anubis")) == "labrepo:5000/ghcr.io/techarohq/anubis:v1.27.0"
    assert lab_ref(spec("miniflux")) == "labrepo:5000/ghcr.io/miniflux/miniflux:2.2.6"
    assert spec("anubis").kind == "stand-in"
    assert all(s.kind == "lab build" for k, s in CATALOG.items() if k not in ("anubis", "whoami"))
    for s in CATALOG.values():
        assert s.tag in s.tags and len(set(s.tags)) == len(s.tags)
        assert s.ports and s.health, s.key
        for name, dest, _ in s.files:
            assert file_text(name), name
            assert not dest.startswith(("/bin/", "/sbin/")), "merged /usr: write to /usr/bin, /usr/sbin"
        if s.version:
            assert s.tag.startswith(s.version), s.key  # the tag names the packaged version
    with pytest.raises(KeyError, match="known"):
        spec("nextcloud")


def test_the_registry_binary_is_mirrored() -> None:
    assert "docker-registry" in packages_for(IMAGE_SUITE)


def test_upstream_interfaces_are_kept() -> None:
    pg = spec("postgres")
    assert dict(pg.env)["PGDATA"] == "/var/lib/postgresql/data" and pg.cmd == ("postgres",)
    assert [u.uid for u in pg.users] == [999] and pg.stopsignal == "SIGINT"
    st = spec("syncthing")
    assert st.entrypoint[:2] == ("/bin/entrypoint.sh", "/bin/syncthing") and "8384/tcp" in st.ports
    assert dict(st.env)["STGUIADDRESS"] == "0.0.0.0:8384"
    tq = spec("radicale-tomsquest")
    assert tq.volumes == ("/config", "/data") and tq.users[0].uid == 2999
    kz = spec("radicale")
    assert kz.entrypoint == ("/app/bin/python", "/app/bin/radicale") and kz.user == "radicale"
    assert kz.users[0].uid == 1000 and kz.volumes == ("/var/lib/radicale",)
    assert spec("miniflux").user == "65534" and dict(spec("miniflux").env)["LISTEN_ADDR"] == "0.0.0.0:8080"
    assert spec("valkey").workdir == "/data" and spec("valkey").cmd == ("valkey-server",)
    assert dict(spec("anubis").env)["BIND"] == ":8923" and dict(spec("anubis").env)["METRICS_BIND"] == ":9090"


def test_debian_version_matching() -> None:
    assert version_matches("1.29.5~ds1-2", "1.29.5")
    assert version_matches("17.12-0+deb13u1", "17.12")
    assert version_matches("8.1.1+dfsg1-3+deb13u3", "8.1.1")
    assert version_matches("1:2.2.6-1+b4", "2.2.6")
    assert not version_matches("17.1-1", "17.12")
    assert not version_matches("(none)", "1.0")


def test_spec_hash_follows_the_spec() -> None:
    import dataclasses

    pg = spec("postgres")
    assert spec_hash(pg) == spec_hash(pg)
    assert spec_hash(dataclasses.replace(pg, tag="17.13")) != spec_hash(pg)


# --------------------------------------------------------------- layers ----


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_layer_converts_overlay_whiteouts(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making an overlay whiteout (a 0:0 char device) needs root")
    upper = tmp_path / "upper"
    (upper / "etc/opaque").mkdir(parents=True)
    (upper / "etc/app.conf").write_text("x=1\n")
    os.mknod(upper / "etc/gone", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "etc/opaque", "trusted.overlay.opaque", b"y")
    os.link(upper / "etc/app.conf", upper / "etc/hardlink")
    layer = oci.write_layer(upper, tmp_path / "l.tar.gz", overlay_upper=True)
    m = _members(tmp_path / "l.tar.gz")
    assert sorted(m) == ["etc", "etc/.wh.gone", "etc/app.conf", "etc/hardlink", "etc/opaque", "etc/opaque/.wh..wh..opq"]
    assert m["etc/.wh.gone"].isreg() and m["etc/hardlink"].islnk()
    raw = (tmp_path / "l.tar.gz").read_bytes()
    assert layer.blob.digest == "sha256:" + hashlib.sha256(raw).hexdigest() and layer.blob.size == len(raw)
    import gzip

    assert layer.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(raw)).hexdigest()
    # same tree, same bytes (sorted entries, no time in the gzip header)
    again = oci.write_layer(upper, tmp_path / "again.tar.gz", overlay_upper=True)
    assert again == layer


def test_layer_of_a_plain_tree_keeps_ids_not_names(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    (root / "usr/bin/tool").chmod(0o755)
    (root / "bin").symlink_to("usr/bin")
    oci.write_layer(root, tmp_path / "b.tar.gz", overlay_upper=False)
    m = _members(tmp_path / "b.tar.gz")
    assert list(m) == ["bin", "usr", "usr/bin", "usr/bin/tool"]
    assert m["bin"].issym() and m["bin"].linkname == "usr/bin"
    assert m["usr/bin/tool"].mode & 0o777 == 0o755 and m["usr/bin/tool"].uname == ""


def test_config_and_manifest_carry_the_upstream_interface() -> None:
    base = oci.Layer(oci.Blob("sha256:" + "1" * 64, 10, oci.LAYER_TYPE), "sha256:" + "2" * 64)
    app = oci.Layer(oci.Blob("sha256:" + "3" * 64, 20, oci.LAYER_TYPE), "sha256:" + "4" * 64)
    cfg = oci.render_config(spec("syncthing"), [base.diff_id, app.diff_id], "2026-12-01T00:00:00Z")
    c = cfg["config"]
    assert c["Entrypoint"] == ["/bin/entrypoint.sh", "/bin/syncthing", "-home", "/var/syncthing/config"]
    assert "PUID=1000" in c["Env"] and c["Env"][0].startswith("PATH=")
    assert c["ExposedPorts"] == {"8384/tcp": {}, "22000/tcp": {}, "22000/udp": {}, "21027/udp": {}}
    assert c["Volumes"] == {"/var/syncthing": {}} and c["Healthcheck"]["Test"][0] == "CMD-SHELL"
    assert c["Labels"]["homelab.lab.kind"] == "lab build"
    assert c["Labels"]["homelab.lab.upstream"] == "docker.io/syncthing/syncthing:1.29.5"
    assert cfg["rootfs"]["diff_ids"] == [base.diff_id, app.diff_id]
    pg = oci.render_config(spec("postgres"), [], "t")["config"]
    assert [e for e in pg["Env"] if e.startswith("PATH=")] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/17/bin"]
    assert "Healthcheck" not in pg and pg["StopSignal"] == "SIGINT"  # upstream postgres has none
    data = oci.canonical_json(cfg)
    man = oci.render_manifest(oci.Blob(oci.digest_of(data), len(data), oci.CONFIG_TYPE), [base, app])
    assert man["mediaType"] == oci.MANIFEST_TYPE and man["schemaVersion"] == 2
    assert man["config"] == {"mediaType": oci.CONFIG_TYPE, "size": len(data), "digest": oci.digest_of(data)}
    assert [lay["digest"] for lay in man["layers"]] == [base.blob.digest, app.blob.digest]


def test_registry_config() -> None:
    cfg = json.loads(render_config("10.79.0.1:5000", Path("/c/storage"), Path("/r/c.crt"), Path("/r/c.key")))
    assert cfg["http"]["addr"] == "10.79.0.1:5000"
    assert cfg["http"]["tls"] == {"certificate": "/r/c.crt", "key": "/r/c.key"}
    assert cfg["storage"]["filesystem"]["rootdirectory"] == "/c/storage"


# ---------------------------------------------------- Anubis stand-in ----

STANDIN = Path(__file__).resolve().parents[2] / "homelab/lab/images/files/anubis_standin.py"
UA = "Mozilla/5.0 (X11; Linux x86_64) lab-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Upstream(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        _Upstream.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"hello from the app\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def standin() -> Iterator[tuple[int, int, str]]:
    app = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    port, metrics = _free_port(), _free_port()
    seed = "11" * 32
    env = {**os.environ, "BIND": f"127.0.0.1:{port}", "METRICS_BIND": f"127.0.0.1:{metrics}",
           "TARGET": f"http://127.0.0.1:{app.server_address[1]}", "DIFFICULTY": "3",
           "ED25519_PRIVATE_KEY_HEX": seed, "COOKIE_SECURE": "false"}
    proc = subprocess.Popen([sys.executable, str(STANDIN)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        yield port, metrics, seed
    finally:
        proc.terminate()
        proc.wait(5)
        app.shutdown()


def _get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, list[str]], str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    out: dict[str, list[str]] = {}
    for k, v in resp.getheaders():
        out.setdefault(k.lower(), []).append(v)
    return resp.status, out, resp.read().decode()


def _solve(random_data: str, difficulty: int) -> tuple[int, str]:
    nonce = 0
    while True:
        h = hashlib.sha256(f"{random_data}{nonce}".encode()).hexdigest()
        if h.startswith("0" * difficulty):
            return nonce, h
        nonce += 1


def test_standin_challenges_then_passes_a_solved_client(standin: tuple[int, int, str]) -> None:
    port, metrics, seed = standin
    assert _get(metrics, "/healthz", {})[0:3:2] == (200, "OK")
    client = {"User-Agent": UA, "X-Real-Ip": "203.0.113.7"}
    status, headers, page = _get(port, "/some/page?x=1", client)
    assert status == 200 and "hello from the app" not in page
    data = json.loads(re.search(r'<script id="anubis_challenge" type="application/json">(.*?)</script>', page).group(1))
    chall = data["challenge"]
    assert data["rules"]["difficulty"] == 3 and chall["difficulty"] == 3 and len(chall["randomData"]) == 128
    verification = headers["set-cookie"][0].split(";")[0]
    assert verification.startswith("techaro.lol-anubis-cookie-verification-")
    assert _get(port, "/.within.website/x/cmd/anubis/api/check", client)[0] == 401

    nonce, response = _solve(chall["randomData"], 3)
    base = f"/.within.website/x/cmd/anubis/api/pass-challenge?id={chall['id']}&nonce={nonce}&elapsedTime=12"
    # a wrong hash is refused, the right one gets a signed cookie and the redirect
    bad = "0" * 3 + "f" * 61
    assert _get(port, f"{base}&response={bad}&redir=/some/page", {**client, "Cookie": verification})[0] == 403
    status, headers, _ = _get(port, f"{base}&response={response}&redir=%2Fsome%2Fpage%3Fx%3D1",
                              {**client, "Cookie": verification})
    assert status == 302 and headers["location"] == ["/some/page?x=1"]
    auth = headers["set-cookie"][0].split(";")[0]
    assert auth.startswith("techaro.lol-anubis-auth-")
    # the challenge cannot be spent twice
    assert _get(port, f"{base}&response={response}&redir=/", {**client, "Cookie": verification})[0] == 500

    # the cookie is an EdDSA JWT by the configured key, bound to the client address
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    import base64

    token = auth.split("=", 1)[1]
    head, body, sig = token.split(".")
    pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    assert json.loads(pad(head))["alg"] == "EdDSA"
    claims = json.loads(pad(body))
    assert claims["restriction"] == hashlib.sha256(b"203.0.113.7").hexdigest() and claims["challenge"] == chall["id"]
    Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed)).public_key().verify(pad(sig), f"{head}.{body}".encode())

    _Upstream.seen.clear()
    status, _, page = _get(port, "/some/page", {**client, "Cookie": auth, "X-Forwarded-For": "198.51.100.9"})
    assert status == 200 and page == "hello from the app\n"
    seen = _Upstream.seen[-1]
    assert seen["x-real-ip"] == "203.0.113.7" and seen["x-anubis-status"] == "PASS"
    assert seen["x-forwarded-for"] == "198.51.100.9, 127.0.0.1"
    assert _get(port, "/.within.website/x/cmd/anubis/api/check", {**client, "Cookie": auth})[0] == 200
    # another client address with the same cookie is challenged again
    status, _, page = _get(port, "/some/page", {**client, "X-Real-Ip": "203.0.113.8", "Cookie": auth})
    assert status == 200 and "anubis_challenge" in page


def test_standin_takes_the_client_from_x_forwarded_for(standin: tuple[int, int, str]) -> None:
    port, _, _ = standin
    # as Anubis: with X-Real-Ip empty, the first public X-Forwarded-For address (private ones stripped)
    _, _, page = _get(port, "/", {"User-Agent": UA, "X-Forwarded-For": "10.0.0.5, 198.51.100.20"})
    data = json.loads(re.search(r'id="anubis_challenge" type="application/json">(.*?)</script>', page).group(1))
    assert data["challenge"]["metadata"]["X-Real-Ip"] == "198.51.100.20"


def test_standin_healthcheck_flag(standin: tuple[int, int, str]) -> None:
    _, metrics, _ = standin
    env = {**os.environ, "METRICS_BIND": f":{metrics}"}
    assert subprocess.run([sys.executable, str(STANDIN), "--healthcheck"], env=env).returncode == 0
    env["METRICS_BIND"] = f":{_free_port()}"
    assert subprocess.run([sys.executable, str(STANDIN), "--healthcheck"], env=env).returncode == 1


def test_standin_module_docstring_says_stand_in() -> None:
    assert "STAND-IN" in STANDIN.read_text().split('"""')[1]


def test_standin_page_script_hashes_like_sha256(tmp_path: Path) -> None:
    """The page's own solver (for real browsers) computes SHA-256 right; checked with node."""
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    sys.path.insert(0, str(STANDIN.parent))
    try:
        import anubis_standin  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    samples = ["", "abc", "a" * 55, "b" * 64, "9f" * 64 + "12345", "ünï"]
    script = tmp_path / "t.js"
    script.write_text(anubis_standin.SOLVER_JS + "\nconsole.log(JSON.stringify(" + json.dumps(samples)
                      + ".map(globalThis.anubisStandinSha256)));\n")
    out = json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True).stdout)
    assert out == [hashlib.sha256(s.encode()).hexdigest() for s in samples]
