"""Offline bundles: pinned images saved into one file, shipped over SSH, `docker load`ed.

For hosts that cannot pull (air-gapped sites, the lab). The bundle is a plain `docker save`
archive, so `docker load -i FILE` works by hand too; what it holds is read from its own
manifest.json (the image ids), nothing beside it.

How the bytes move: made where the images are (the operator's own docker, or a host that
has them: `docker save` there, then SFTP to the operator's machine), and shipped with SFTP
over the same paramiko transport homelab already holds to each host — one file, no scp or
rsync needed, resumable by simply shipping again. On the host the file lands in /var/tmp,
its sha256 is checked against the local one before `docker load`, and it is removed after.
A host that already has every pinned id gets nothing.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from homelab.errors import HomelabError
from homelab.layers.apps.pins import SHA256, ImagePin
from homelab.ssh import Connection

if TYPE_CHECKING:  # homelab.ssh imports paramiko its own way (without invoke)
    import paramiko

REMOTE_DIR = "/var/tmp"


def bundle_ids(manifest_json: str) -> set[str]:
    """Image ids in a `docker save` archive's manifest.json (OCI layout or the older one)."""
    out = set()
    for entry in json.loads(manifest_json):
        config = entry.get("Config", "")
        # docker 25+: "blobs/sha256/<hex>"; before: "<hex>.json"
        hexid = config.rsplit("/", 1)[-1].removesuffix(".json")
        if SHA256.fullmatch("sha256:" + hexid):
            out.add("sha256:" + hexid)
    return out


def read_bundle_ids(path: Path) -> set[str]:
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            return bundle_ids(member.read().decode())
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise HomelabError(f"bundle {path} is not a `docker save` archive: {exc}",
                           "make it again with `homelab bundle CONFIG -o FILE`") from None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render_save_script(pins: Iterable[ImagePin], remote_path: str) -> str:
    """On a host that has the images: point each ref at its pinned id, save them all."""
    pins = sorted(pins, key=lambda p: p.ref)
    lines = ["set -eu"]
    for p in pins:
        iid, ref = shlex.quote(p.image_id), shlex.quote(p.ref)
        lines.append(f"docker image inspect {iid} >/dev/null 2>&1 || {{ echo 'missing {p.ref} {p.image_id}' >&2; exit 5; }}")
        lines.append(f"docker tag {iid} {ref}")  # the local tag names the pinned image (a tag may have moved)
    refs = " ".join(shlex.quote(p.ref) for p in pins)
    lines.append(f"docker save -o {shlex.quote(remote_path)} {refs}")
    # the file is fetched over SFTP as the login user, who may not be root (sudo)
    lines.append(f"chown \"${{SUDO_USER:-root}}\" {shlex.quote(remote_path)}")
    return "\n".join(lines) + "\n"


def render_missing_probe(pins: Iterable[ImagePin]) -> str:
    """Prints `missing ID` for every pinned image the host does not have."""
    return "".join(f"docker image inspect {shlex.quote(p.image_id)} >/dev/null 2>&1 || echo 'missing {p.image_id}'\n"
                   for p in sorted(pins, key=lambda p: p.ref))


def parse_missing(text: str) -> set[str]:
    return {line.split()[1] for line in text.splitlines() if line.startswith("missing ")}


def render_load_script(remote_path: str, sha256: str, pins: Iterable[ImagePin]) -> str:
    """Check the shipped file, load it, remove it, and fail unless every pinned id is there."""
    q = shlex.quote(remote_path)
    return "\n".join([
        "set -eu",
        f"trap 'rm -f {q}' EXIT",
        f"[ \"$(sha256sum < {q} | cut -d' ' -f1)\" = {shlex.quote(sha256)} ] || "
        "{ echo 'bundle damaged in transfer (sha256 differs)' >&2; exit 1; }",
        f"docker load -q -i {q} >&2",
        render_missing_probe(pins).rstrip("\n"),
        "true",
    ]) + "\n"


def create_bundle(pins: Iterable[ImagePin], out: Path, source: Connection | None = None) -> set[str]:
    """Save the pinned images into `out`, from the local docker or from host `source`; returns the ids."""
    pins = list(pins)
    if not pins:
        raise HomelabError("no pinned images to bundle", "apply once where the images can be pulled, to pin them")
    out.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        script = render_save_script(pins, str(out))
        proc = subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True)
        if proc.returncode != 0:
            raise HomelabError(f"save images into {out}: {proc.stderr.strip()[-500:]}",
                               "is docker running here, with the pinned images pulled?")
    else:
        remote = f"{REMOTE_DIR}/homelab-bundle-out.tar"
        r = source.run_script(render_save_script(pins, remote), timeout=1800)
        if r.rc != 0:
            raise HomelabError(f"save images on {source.target.name}: {r.stderr.strip()[-500:]}")
        sftp = _sftp(source)
        try:
            sftp.get(remote, str(out))
        finally:
            sftp.close()
            source.run_script(f"rm -f {shlex.quote(remote)}\n")
    ids = read_bundle_ids(out)
    wanted = {p.image_id for p in pins}
    if not wanted <= ids:
        raise HomelabError(f"bundle {out} lacks {', '.join(sorted(wanted - ids))}")
    return ids


def ship_bundle(conn: Connection, bundle: Path, pins: Iterable[ImagePin]) -> bool:
    """Load the bundle on the host if it lacks any pinned image; True when it was shipped."""
    pins = list(pins)
    r = conn.run_script(render_missing_probe(pins))
    if not parse_missing(r.stdout):
        return False
    ids = read_bundle_ids(bundle)
    lacking = parse_missing(r.stdout) - ids
    if lacking:
        raise HomelabError(f"{conn.target.name} needs {', '.join(sorted(lacking))}, which bundle {bundle} does not hold",
                           "make the bundle again after `homelab apps update`")
    digest = sha256_file(bundle)
    remote = f"{REMOTE_DIR}/homelab-bundle-{digest[:16]}.tar"
    sftp = _sftp(conn)
    try:
        sftp.put(str(bundle), remote)
    finally:
        sftp.close()
    r = conn.run_script(render_load_script(remote, digest, pins), timeout=1800)
    still = parse_missing(r.stdout)
    if r.rc != 0 or still:
        raise HomelabError(f"load bundle on {conn.target.name}: {r.stderr.strip()[-500:] or 'images still missing: ' + ', '.join(sorted(still))}")
    return True


def _sftp(conn: Connection) -> paramiko.SFTPClient:
    client = conn.transport.open_sftp_client()
    if client is None:
        raise HomelabError(f"{conn.target.name}: the SSH server offers no SFTP", "install openssh-sftp-server there")
    return client
