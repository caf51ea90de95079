"""Image layers, configs and manifests in the Docker v2 schema 2 format (what `docker pull` reads).

A layer is the tar of a directory: the image base's rootfs, or an overlayfs upper dir holding
what one image's build changed over that base. overlayfs marks deletions with 0:0 character
devices and opaque directories with an xattr; image layers spell them `.wh.NAME` and
`.wh..wh..opq` (OCI image spec, "Whiteouts"), so the upper dir is rewritten on the way.
Entries are sorted and the gzip header carries no time, so the same tree gives the same blob.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator

from homelab.lab.images.catalog import ImageSpec

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class Blob:
    digest: str  # "sha256:..." of the bytes as stored (gzipped for layers)
    size: int
    media_type: str


@dataclass(frozen=True)
class Layer:
    blob: Blob
    diff_id: str  # sha256 of the uncompressed tar (the image config's rootfs.diff_ids)


class _HashingWriter:
    """A file-like sink that hashes and counts what passes through to `out`."""

    def __init__(self, out: IO[bytes] | None) -> None:
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: Path) -> bool:
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def walk_sorted(root: Path) -> Iterator[Path]:
    """Every path under `root` (not root itself), parents before children, names sorted."""
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from walk_sorted(path)


def write_layer(root: Path, dest: Path, *, overlay_upper: bool, skip: frozenset[str] = frozenset()) -> Layer:
    """Tar+gzip the tree at `root` into `dest`; `skip` holds relative paths left out (with their subtrees)."""
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "wb") as raw:
        blob_hash = _HashingWriter(raw)
        with gzip.GzipFile(fileobj=blob_hash, mode="wb", compresslevel=1, mtime=0) as gz:
            diff_hash = _HashingWriter(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=diff_hash, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                _add_tree(tar, root, overlay_upper, skip)
    os.replace(tmp, dest)
    return Layer(Blob(f"sha256:{blob_hash.sha.hexdigest()}", blob_hash.size, LAYER_TYPE),
                 f"sha256:{diff_hash.sha.hexdigest()}")


def _add_tree(tar: tarfile.TarFile, root: Path, overlay_upper: bool, skip: frozenset[str]) -> None:
    skipped: list[str] = []
    for path in walk_sorted(root):
        rel = path.relative_to(root).as_posix()
        if rel in skip or any(rel.startswith(s + "/") for s in skipped):
            skipped.append(rel)
            continue
        st = os.lstat(path)
        if overlay_upper and _is_whiteout(st):
            info = tarfile.TarInfo(str(Path(rel).parent / (WHITEOUT + path.name)).removeprefix("./"))
            info.mtime = int(st.st_mtime)
            tar.addfile(info)
            continue
        info = tar.gettarinfo(str(path), arcname=rel)
        info.uname = info.gname = ""  # ids only: names differ between the build root and the image
        if info.isreg():
            with open(path, "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
        if overlay_upper and info.isdir() and _is_opaque(path):
            marker = tarfile.TarInfo(f"{rel}/{OPAQUE}")
            marker.mtime = int(st.st_mtime)
            tar.addfile(marker)


def render_config(spec: ImageSpec, diff_ids: list[str], created: str) -> dict[str, Any]:
    """The image config: the upstream image's interface, plus labels saying what this image is."""
    cfg: dict[str, Any] = {
        "Env": [f"{k}={v}" for k, v in _env(spec)],
        "Labels": {
            "org.opencontainers.image.title": spec.upstream.rsplit("/", 1)[-1],
            "org.opencontainers.image.version": spec.tag,
            "homelab.lab.kind": spec.kind,
            "homelab.lab.upstream": spec.ref,
            "homelab.lab.source": spec.source,
        },
    }
    if spec.entrypoint:
        cfg["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd:
        cfg["Cmd"] = list(spec.cmd)
    if spec.ports:
        cfg["ExposedPorts"] = {p: {} for p in spec.ports}
    if spec.volumes:
        cfg["Volumes"] = {v: {} for v in spec.volumes}
    if spec.user:
        cfg["User"] = spec.user
    if spec.workdir:
        cfg["WorkingDir"] = spec.workdir
    if spec.stopsignal:
        cfg["StopSignal"] = spec.stopsignal
    if spec.healthcheck:
        cfg["Healthcheck"] = {"Test": list(spec.healthcheck), "Interval": 60_000_000_000,
                              "Timeout": 10_000_000_000}
    return {
        "architecture": "amd64", "os": "linux", "created": created, "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"homelab lab: {spec.kind} of {spec.ref}"}],
    }


def _env(spec: ImageSpec) -> list[tuple[str, str]]:
    default_path = ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    names = {k for k, _ in spec.env}
    return ([] if "PATH" in names else [default_path]) + list(spec.env)


def render_manifest(config: Blob, layers: list[Layer]) -> dict[str, Any]:
    return {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": config.media_type, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": lay.blob.media_type, "size": lay.blob.size, "digest": lay.blob.digest}
                   for lay in layers],
    }


def canonical_json(data: dict[str, Any]) -> bytes:
    """Stable bytes: the digest of a config or manifest is the digest of exactly these bytes."""
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"
