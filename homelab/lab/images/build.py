"""Build the lab images on the outer machine: one slim Debian base layer, one layer per image.

Layout under the lab cache (shared by labs, one flock for all image builds):

    images/<suite>/base/            debootstrap minbase, trimmed like Debian's slim images
    images/<suite>/blobs/sha256/    layers, configs and manifests by digest
    images/<suite>/built/<key>.json what was built for an image (spec hash, manifest digest)
    images/<suite>/work/            scratch (overlay mounts of running builds)

An image's layer is the overlayfs upper dir of a chroot over the base in which its packages
were installed (apt from the Debian mirror, pip from PyPI: the outer machine reaches both;
the hosts never do). A change to an image's spec or files rebuilds only that image.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from homelab.lab.config import LabError
from homelab.lab.images import oci
from homelab.lab.images.catalog import CATALOG, IMAGE_SUITE, ImageSpec
from homelab.lab.system import (
    Timer, file_lock, is_mounted, make_root_dir, remove_tree, run, run_logged, umount_all, write_root_file,
)

log = logging.getLogger("homelab.lab")

# like debian:*-slim: no docs, man pages or translations in any image
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""
# no daemon may start inside a build chroot (postinst scripts try)
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
BASE_VERSION = "1"  # bump to rebuild every image's base


@dataclass(frozen=True)
class BuiltImage:
    key: str
    spec_hash: str
    manifest: str  # digest of the manifest bytes (what `docker pull` resolves a tag to)
    config: str
    layers: tuple[str, ...]


@dataclass(frozen=True)
class ImageCache:
    cache: Path
    suite: str = IMAGE_SUITE

    @property
    def root(self) -> Path:
        return self.cache / "images" / self.suite

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def base_info(self) -> Path:
        return self.root / "base.json"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    @property
    def lock(self) -> Path:
        return self.cache / "locks" / "images.lock"

    def blob(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    def built_file(self, key: str) -> Path:
        return self.root / "built" / f"{key}.json"

    def built(self, key: str) -> BuiltImage | None:
        try:
            data = json.loads(self.built_file(key).read_text())
            return BuiltImage(data["key"], data["spec_hash"], data["manifest"], data["config"], tuple(data["layers"]))
        except (OSError, ValueError, KeyError):
            return None

    def base_layer(self) -> oci.Layer | None:
        try:
            data = json.loads(self.base_info.read_text())
            if data.get("version") != BASE_VERSION:
                return None
            return oci.Layer(oci.Blob(data["digest"], data["size"], oci.LAYER_TYPE), data["diff_id"])
        except (OSError, ValueError, KeyError):
            return None


def file_text(name: str) -> bytes:
    return resources.files("homelab.lab.images").joinpath("files", name).read_bytes()


def spec_hash(spec: ImageSpec) -> str:
    """Changes when the spec or any file it copies changes (then only that image is rebuilt)."""
    h = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for name, _, _ in spec.files:
        h.update(file_text(name))
    h.update(BASE_VERSION.encode())
    return h.hexdigest()[:16]


def ensure_built(cache: Path, mirror: str, keys: list[str] | None = None) -> dict[str, BuiltImage]:
    """Build what is missing or stale (under the images lock); returns every asked image."""
    ic = ImageCache(cache)
    keys = list(keys or CATALOG)
    specs = [CATALOG[k] for k in keys]

    def fresh(s: ImageSpec) -> bool:
        b = ic.built(s.key)
        return b is not None and b.spec_hash == spec_hash(s) and ic.blob(b.manifest).is_file()

    if all(fresh(s) for s in specs) and ic.base_layer():
        return {s.key: ic.built(s.key) for s in specs}  # type: ignore[misc]
    with file_lock(ic.lock, "the lab images"):
        ic.logs.mkdir(parents=True, exist_ok=True)
        remove_tree(ic.work)
        base = ic.base_layer() or build_base(ic, mirror)
        for s in specs:
            if not fresh(s):
                build_image(ic, s, base, mirror)
        remove_tree(ic.work)
    return {s.key: ic.built(s.key) for s in specs}  # type: ignore[misc]


def store_blob(ic: ImageCache, data: bytes) -> oci.Blob:
    digest = oci.digest_of(data)
    path = ic.blob(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return oci.Blob(digest, len(data), "")


def _layer_into_store(ic: ImageCache, root: Path, overlay_upper: bool) -> oci.Layer:
    ic.blobs.mkdir(parents=True, exist_ok=True)
    tmp = ic.blobs / f"layer-{os.getpid()}.tar.gz"
    layer = oci.write_layer(root, tmp, overlay_upper=overlay_upper)
    os.replace(tmp, ic.blob(layer.blob.digest))
    return layer


# ------------------------------------------------------------------- base ----

def build_base(ic: ImageCache, mirror: str) -> oci.Layer:
    t = Timer()
    tmp = ic.root / "base.tmp"
    remove_tree(tmp)
    logfile = ic.logs / f"images-{ic.suite}-debootstrap.log"
    logfile.write_text("")
    log.info("lab images: debootstrap %s minbase for the image base (about a minute) ...", ic.suite)
    run_logged(["debootstrap", "--variant=minbase", ic.suite, str(tmp), mirror], logfile,
               what=f"debootstrap {ic.suite} image base")
    write_root_file(tmp, "etc/dpkg/dpkg.cfg.d/docker-slim", DPKG_EXCLUDES)
    write_root_file(tmp, "etc/apt/apt.conf.d/99lab-images",
                    'APT::Install-Recommends "false";\nAcquire::Languages "none";\n')
    write_root_file(tmp, "etc/apt/sources.list", f"deb {mirror} {ic.suite} main\n")
    run(["chroot", str(tmp), "apt-get", "clean"], what="apt-get clean")
    for rel in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                "var/log", "var/cache/apt", "dev", "tmp", "run"):
        _empty_dir(tmp / rel)
    for keep in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        (tmp / keep).mkdir(parents=True, exist_ok=True)
    (tmp / "etc/resolv.conf").unlink(missing_ok=True)
    (tmp / "etc/hostname").unlink(missing_ok=True)
    os.chmod(tmp / "tmp", 0o1777)
    remove_tree(ic.base)
    tmp.rename(ic.base)
    layer = _layer_into_store(ic, ic.base, overlay_upper=False)
    ic.base_info.write_text(json.dumps({"version": BASE_VERSION, "digest": layer.blob.digest,
                                        "size": layer.blob.size, "diff_id": layer.diff_id}) + "\n")
    log.info("lab images: base layer %s (%.0f MB) in %s", layer.blob.digest[:19], layer.blob.size / 1e6, t)
    return layer


def _empty_dir(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


# ------------------------------------------------------------------ image ----

def build_image(ic: ImageCache, spec: ImageSpec, base: oci.Layer, mirror: str) -> BuiltImage:
    t = Timer()
    w = ic.work / spec.key
    upper, workdir, root = w / "upper", w / "work", w / "root"
    remove_tree(w)
    for d in (upper, workdir, root):
        d.mkdir(parents=True)
    logfile = ic.logs / f"images-{spec.key}.log"
    logfile.write_text("")
    log.info("lab images: building %s (%s of %s) ...", spec.key, spec.kind, spec.ref)
    run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={ic.base},upperdir={upper},workdir={workdir}",
         str(root)], what="mount image build overlay")
    try:
        run(["mount", "--bind", "/proc", str(root / "proc")], what="mount /proc")
        run(["mount", "--bind", "/dev", str(root / "dev")], what="mount /dev")  # no --rbind: its submounts could propagate back
        write_root_file(root, "etc/resolv.conf", Path("/etc/resolv.conf").read_text())
        write_root_file(root, "usr/sbin/policy-rc.d", POLICY_RC_D, mode=0o755)
        _install(root, spec, logfile)
        # build-only files go again: they must not end up in the layer
        for rel in ("etc/resolv.conf", "usr/sbin/policy-rc.d"):
            (root / rel).unlink(missing_ok=True)
    finally:
        umount_all(root)
        if is_mounted(root):
            raise LabError(f"could not unmount {root}")
    layer = _layer_into_store(ic, upper, overlay_upper=True)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    config = oci.render_config(spec, [base.diff_id, layer.diff_id], created)
    cblob = store_blob(ic, oci.canonical_json(config))
    manifest = oci.render_manifest(oci.Blob(cblob.digest, cblob.size, oci.CONFIG_TYPE), [base, layer])
    mblob = store_blob(ic, oci.canonical_json(manifest))
    built = BuiltImage(spec.key, spec_hash(spec), mblob.digest, cblob.digest,
                       (base.blob.digest, layer.blob.digest))
    ic.built_file(spec.key).parent.mkdir(parents=True, exist_ok=True)
    ic.built_file(spec.key).write_text(json.dumps(asdict(built), indent=1) + "\n")
    remove_tree(w)
    log.info("lab images: %s built in %s (layer %.0f MB)", spec.key, t, layer.blob.size / 1e6)
    return built


def _chroot_sh(root: Path, script: str, logfile: Path, what: str) -> None:
    run_logged(["chroot", str(root), "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "DEBIAN_FRONTEND=noninteractive", "HOME=/root", "LANG=C.UTF-8", "/bin/sh", "-ec", script],
               logfile, what=what)


def _install(root: Path, spec: ImageSpec, logfile: Path) -> None:
    for u in spec.users:
        _chroot_sh(root, f"groupadd -r -g {u.uid} {u.name} && useradd -r -u {u.uid} -g {u.name} "
                         f"-d {shlex.quote(u.home)} -s /usr/sbin/nologin -M {u.name}", logfile, f"{spec.key}: users")
    for cmd in spec.pre:
        _chroot_sh(root, cmd, logfile, f"{spec.key}: pre-install step")
    if spec.apt:
        _chroot_sh(root, "apt-get update -qq", logfile, f"{spec.key}: apt-get update")
        if spec.version_package:
            check_version(root, spec)
        _chroot_sh(root, "apt-get install -y -qq --no-install-recommends " + " ".join(map(shlex.quote, spec.apt)),
                   logfile, f"{spec.key}: apt-get install")
    if spec.pip:
        # the outer machine's CA bundle, for this step only: its route to PyPI may need it
        # (/tmp is emptied before the layer is taken)
        outer_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        cert = ""
        if outer_ca.is_file():
            shutil.copy2(outer_ca, root / "tmp/outer-ca.crt")
            cert = "PIP_CERT=/tmp/outer-ca.crt "
        venv = shlex.quote(spec.pip_venv)
        _chroot_sh(root, f"python3 -m venv {venv} && {cert}{venv}/bin/pip install -q --no-cache-dir "
                   "--disable-pip-version-check " + " ".join(map(shlex.quote, spec.pip)),
                   logfile, f"{spec.key}: pip install")
    for name, dest, mode in spec.files:
        path = root / dest.lstrip("/")
        make_root_dir(root, str(Path(dest).parent))
        path.write_bytes(file_text(name))
        os.chmod(path, mode)
    for cmd in spec.setup:
        _chroot_sh(root, cmd, logfile, f"{spec.key}: setup step")
    _chroot_sh(root, "apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/* /root/.cache /tmp/* "
                     "/var/cache/debconf/*-old /var/lib/dpkg/*-old", logfile, f"{spec.key}: clean")


def check_version(root: Path, spec: ImageSpec) -> None:
    out = run(["chroot", str(root), "apt-cache", "policy", spec.version_package], what="apt-cache policy").stdout
    candidate = next((ln.split()[-1] for ln in out.splitlines() if ln.strip().startswith("Candidate:")), "(none)")
    if not version_matches(candidate, spec.version):
        raise LabError(f"lab image {spec.key}: Debian has {spec.version_package} {candidate}, "
                       f"the catalog tags it {spec.tag} (version {spec.version})",
                       "update the tag and version in homelab/lab/images/catalog.py")


def version_matches(debian_version: str, upstream: str) -> bool:
    """'1.29.5~ds1-2' is 1.29.5; '17.12-0+deb13u1' is 17.12; '17.1-1' is not 17.12."""
    if debian_version in ("", "(none)"):
        return False
    plain = debian_version.split(":", 1)[-1]
    for sep in ("~", "+", "-"):
        plain = plain.split(sep, 1)[0]
    return plain == upstream
