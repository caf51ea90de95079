"""The shared cache: one debootstrap base per suite, a local flat apt repo, image tarballs.

Layout under the cache dir (shared by labs, guarded by one flock per suite):

    base/<suite>/            read-only lower dir of every host of that suite
    base/<suite>.ready       marker, written last
    repo/<suite>/            flat apt repo (pool/, Packages, Release) + images/*.tar;
                             `repo/` is what the lab's http server serves
    work/<suite>/            scratch for builds
    logs/<suite>-*.log       debootstrap / download output
    locks/<suite>.lock
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from homelab.lab.config import BASE_INCLUDE, SUITES, LabError, packages_for
from homelab.lab.system import (
    Timer, file_lock, is_mounted, make_root_dir, remove_tree, run, run_logged, umount_all,
    write_root_file,
)

log = logging.getLogger("homelab.lab")

STUB_DEB = "lab-kernel-stub_1.0_all.deb"
# A real host has a kernel image that Provides wireguard-modules. Without one, apt satisfies
# wireguard-tools' Recommends with linux-image-rt-amd64: 45 s of install and an initramfs.
STUB_CONTROL = """\
Package: lab-kernel-stub
Version: 1.0
Architecture: all
Maintainer: homelab lab <root@localhost>
Priority: optional
Section: kernel
Provides: wireguard-modules (= 1.0.0)
Description: lab container stand-in for a kernel image
 Lab hosts run on the outer kernel; this only satisfies Recommends.
"""
# stdlib parts the python image does without (keeps it ~25 MB)
PY_IMAGE_SKIP = {"test", "idlelib", "tkinter", "ensurepip", "lib2to3", "__pycache__"}


@dataclass(frozen=True)
class SuiteCache:
    """Paths of one suite's cached base and repo."""

    cache: Path
    suite: str

    @property
    def base(self) -> Path:
        return self.cache / "base" / self.suite

    @property
    def base_marker(self) -> Path:
        return self.cache / "base" / f"{self.suite}.ready"

    @property
    def repo(self) -> Path:
        return self.cache / "repo" / self.suite

    @property
    def repo_marker(self) -> Path:
        return self.repo / ".lab-ready"

    @property
    def work(self) -> Path:
        return self.cache / "work" / self.suite

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    def logfile(self, step: str) -> Path:
        return self.logs / f"{self.suite}-{step}.log"

    def base_ready(self) -> bool:
        return self.base_marker.is_file() and self.base.is_dir()

    def repo_info(self) -> dict[str, object]:
        """What the repo was built with ({} when not built)."""
        try:
            return dict(json.loads(self.repo_marker.read_text()))
        except (OSError, ValueError):
            return {}

    def ready(self) -> bool:
        return self.base_ready() and self.repo_info().get("requested") == packages_for(self.suite)

    @property
    def python_version(self) -> str:
        """e.g. "3.13": the version in the suite's python image (tag it lab/python:<this>)."""
        return str(self.repo_info().get("python", ""))


def ensure_suite(cache: Path, suite: str, mirror: str | None = None) -> SuiteCache:
    """Build what is missing of a suite's cache; a no-op (no lock wait) when it is ready."""
    if suite not in SUITES:
        raise LabError(f"unknown suite {suite!r}", f"use one of: {', '.join(SUITES)}")
    sc = SuiteCache(cache, suite)
    if sc.ready():
        return sc
    with file_lock(cache / "locks" / f"{suite}.lock", f"the {suite} cache"):
        # another lab may have built it while we waited for the lock: check again
        sc.logs.mkdir(parents=True, exist_ok=True)
        remove_tree(sc.work)  # leftovers (and their mounts) of a build that crashed
        mirror = mirror or mirror_url()
        if not sc.base_ready():
            build_base(sc, mirror)
        if sc.repo_info().get("requested") != packages_for(suite):
            build_repo(sc, mirror)
        remove_tree(sc.work)
    return sc


DEFAULT_MIRROR = "http://deb.debian.org/debian"


def mirror_url() -> str:
    """The first Debian (non-security) URI of the outer machine's apt sources.

    Lab hosts are Debian whatever the outer machine runs: on Ubuntu (whose sources name
    Ubuntu mirrors) the Debian project's own mirror is used.
    """
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.is_file():
        for m in re.finditer(r"^URIs:\s*(\S+)", deb822.read_text(), re.M):
            if "security" not in m.group(1) and "debian" in m.group(1):
                return m.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"] and "security" not in line:
                for w in words[1:]:
                    if w.startswith(("http://", "https://")) and "debian" in w:
                        return w
    return DEFAULT_MIRROR


# ----------------------------------------------------------------------- base ----

def build_base(sc: SuiteCache, mirror: str) -> None:
    t = Timer()
    tmp = sc.base.with_name(sc.suite + ".tmp")
    remove_tree(tmp)
    sc.base_marker.unlink(missing_ok=True)
    sc.repo_marker.unlink(missing_ok=True)  # the pool must match the base's own debs
    log.info("%s: debootstrap minbase + %d packages from %s (about a minute) ...",
             sc.suite, len(BASE_INCLUDE), mirror)
    sc.logfile("debootstrap").write_text("")
    run_logged(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_INCLUDE)}",
                sc.suite, str(tmp), mirror], sc.logfile("debootstrap"), what=f"debootstrap {sc.suite}")
    pool = sc.repo / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    collect_debs(tmp / "var/cache/apt/archives", pool)  # base debs stay installable (--reinstall)
    run(["chroot", str(tmp), "apt-get", "clean"], what="apt-get clean")
    shutil.rmtree(tmp / "var/lib/apt/lists", ignore_errors=True)
    (tmp / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    customize_base(tmp)
    install_kernel_stub(tmp, pool / STUB_DEB)
    remove_tree(sc.base)
    tmp.rename(sc.base)
    sc.base_marker.write_text(",".join(BASE_INCLUDE) + "\n")
    log.info("%s: base rootfs ready in %s", sc.suite, t)


def customize_base(root: Path) -> None:
    """Identity-free, test-speed settings shared by every host of the suite."""
    # per-host identity is made at `up`: no shared host keys or machine-id
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    write_root_file(root, "etc/machine-id", "")
    # an unprivileged sudo user, like a cloud image's default user
    run(["chroot", str(root), "useradd", "-m", "-s", "/bin/bash", "-G", "sudo", "admin"], what="useradd admin")
    write_root_file(root, "etc/sudoers.d/admin", "admin ALL=(ALL) NOPASSWD:ALL\n", mode=0o440)
    # background apt jobs would grab the dpkg lock in the middle of a test
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    write_root_file(root, "etc/apt/apt.conf.d/99lab", 'Acquire::Languages "none";\n')
    # test speed only: no fsync per file, no man-db rebuild on every install
    write_root_file(root, "etc/dpkg/dpkg.cfg.d/99lab-unsafe-io", "force-unsafe-io\n")
    run(["chroot", str(root), "debconf-set-selections"], input="man-db man-db/auto-update boolean false\n",
        what="debconf-set-selections")


def install_kernel_stub(root: Path, deb: Path) -> None:
    stage = root / "tmp/lab-kernel-stub"
    make_root_dir(root, "tmp/lab-kernel-stub/DEBIAN")
    write_root_file(root, "tmp/lab-kernel-stub/DEBIAN/control", STUB_CONTROL)
    run(["dpkg-deb", "--build", "--root-owner-group", str(stage), str(deb)], what="build kernel stub")
    shutil.rmtree(stage)
    shutil.copy2(deb, root / "tmp" / STUB_DEB)
    run(["chroot", str(root), "dpkg", "-i", f"/tmp/{STUB_DEB}"], what="install kernel stub")
    (root / "tmp" / STUB_DEB).unlink()


def collect_debs(src: Path, pool: Path) -> int:
    """Hard-link (or copy) new .debs into the pool; returns how many were new."""
    new = 0
    for deb in src.glob("*.deb"):
        dest = pool / deb.name
        if dest.exists():
            continue
        try:
            os.link(deb, dest)
        except OSError:
            shutil.copy2(deb, dest)
        new += 1
    return new


# ----------------------------------------------------------------------- repo ----

def build_repo(sc: SuiteCache, mirror: str) -> None:
    """Download the closure of the suite's package list, index it, build the images."""
    t = Timer()
    requested = packages_for(sc.suite)
    pool = sc.repo / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    wanted, new = download_closure(sc, mirror, requested, pool)
    index_repo(sc.repo)
    python = build_images(sc)
    info = {"requested": requested, "mirrored": wanted, "python": python}
    sc.repo_marker.write_text(json.dumps(info, indent=1) + "\n")
    debs = len(list(pool.glob("*.deb")))
    log.info("%s: local apt repo ready in %s (%d new, %d debs in all)", sc.suite, t, new, debs)


def download_closure(sc: SuiteCache, mirror: str, requested: list[str], pool: Path) -> tuple[list[str], int]:
    """apt-get --download-only in a chroot over the base: the exact closure, Recommends included."""
    w = sc.work / "dl"
    upper, workdir, root = w / "upper", w / "work", w / "root"
    for d in (upper, workdir, root):
        d.mkdir(parents=True, exist_ok=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={sc.base},upperdir={upper},workdir={workdir}", str(root)], what="mount build overlay")
    try:
        run(["mount", "--bind", "/proc", str(root / "proc")], what="mount /proc")
        write_root_file(root, "etc/resolv.conf", Path("/etc/resolv.conf").read_text())
        write_root_file(root, "etc/apt/sources.list", f"deb {mirror} {sc.suite} main\n")
        logfile = sc.logfile("download")
        logfile.write_text("")
        run_logged(["chroot", str(root), "apt-get", "update", "-qq"], logfile, what=f"{sc.suite}: apt-get update")
        wanted = available_packages(root, requested)
        skipped = [p for p in requested if p not in wanted]
        if skipped:
            log.info("%s: not in this suite, skipped: %s", sc.suite, " ".join(skipped))
        log.info("%s: downloading the closure of %d packages ...", sc.suite, len(wanted))
        run_logged(["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
                    "-y", "-qq", "--download-only", *wanted], logfile, what=f"{sc.suite}: package download")
        new = collect_debs(root / "var/cache/apt/archives", pool)
    finally:
        umount_all(root)
        if is_mounted(root):
            raise LabError(f"could not unmount {root}")
    return wanted, new


def available_packages(root: Path, names: list[str]) -> list[str]:
    """The names that have an installable candidate in the chroot's apt sources."""
    out = run(["chroot", str(root), "apt-cache", "policy", *names], what="apt-cache policy").stdout
    found, current = set(), ""
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
        elif line.strip().startswith("Candidate:") and line.split()[-1] != "(none)":
            found.add(current)
    return [n for n in names if n in found]


def index_repo(repo: Path) -> None:
    packages = run(["apt-ftparchive", "packages", "pool"], cwd=repo, what="index repo").stdout
    (repo / "Packages.tmp").write_text(packages)
    with gzip.open(repo / "Packages.gz.tmp", "wt", compresslevel=9) as f:
        f.write(packages)
    os.replace(repo / "Packages.tmp", repo / "Packages")
    os.replace(repo / "Packages.gz.tmp", repo / "Packages.gz")
    release = run(["apt-ftparchive", "release", "."], cwd=repo, what="index repo").stdout
    (repo / "Release.tmp").write_text(release)
    os.replace(repo / "Release.tmp", repo / "Release")


# --------------------------------------------------------------------- images ----
# No registry is reachable from the hosts: tiny rootfs tarballs for `docker import` instead.

def build_images(sc: SuiteCache) -> str:
    """busybox.tar and python.tar into repo/<suite>/images; returns the python version."""
    images = sc.repo / "images"
    images.mkdir(parents=True, exist_ok=True)
    w = sc.work / "images"
    remove_tree(w)
    busybox = extract_busybox(sc, w / "x")
    bb = w / "bb"
    populate_busybox(bb, busybox)
    (bb / "www").mkdir()
    write_root_file(bb, "www/index.html", "hello-from-busybox\n")
    run(["tar", "-C", str(bb), "-cf", str(images / "busybox.tar"), "."], what="tar busybox image")
    py = w / "py"
    version = populate_python(sc.base, py)
    populate_busybox(py, busybox, applets=("sh",))
    for d in ("tmp", "srv"):
        (py / d).mkdir(exist_ok=True)
    write_root_file(py, "srv/index.html", "hello-from-python-image\n")
    run(["tar", "-C", str(py), "-cf", str(images / "python.tar"), "."], what="tar python image")
    remove_tree(w)
    return version


def extract_busybox(sc: SuiteCache, dest: Path) -> Path:
    debs = sorted((sc.repo / "pool").glob("busybox-static_*.deb"))
    if not debs:
        raise LabError(f"{sc.suite}: busybox-static is not in the repo", "keep it in LAB_PACKAGES")
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(debs[-1]), str(dest)], what="extract busybox")
    for rel in ("usr/bin/busybox", "bin/busybox"):  # trixie moved it to /usr/bin
        if (dest / rel).is_file() and not (dest / rel).is_symlink():
            return dest / rel
    raise LabError(f"{sc.suite}: no busybox binary in {debs[-1].name}")


def populate_busybox(root: Path, busybox: Path,
                     applets: tuple[str, ...] = ("sh", "ls", "cat", "echo", "env", "httpd", "wget", "sleep", "ip")) -> None:
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    for applet in applets:
        (root / "bin" / applet).unlink(missing_ok=True)
        (root / "bin" / applet).symlink_to("busybox")


def populate_python(base: Path, dest: Path) -> str:
    """The base's own python3 (interpreter, its libraries, a trimmed stdlib) under `dest`."""
    exe = run(["chroot", str(base), "readlink", "-f", "/usr/bin/python3"], what="find python3").stdout.strip()
    name = Path(exe).name  # python3.11 on bookworm, python3.13 on trixie
    for path in [exe, *shared_libs(base, exe)]:
        real = run(["chroot", str(base), "readlink", "-f", path], what="resolve library").stdout.strip()
        target = dest / path.lstrip("/")  # keep the name the loader looks for, copy the real file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base / real.lstrip("/"), target)
    (dest / "usr/bin/python3").symlink_to(name)
    stdlib = f"usr/lib/{name}"
    shutil.copytree(base / stdlib, dest / stdlib, symlinks=True,
                    ignore=lambda _d, names: [n for n in names if n in PY_IMAGE_SKIP])
    return name.removeprefix("python")


def shared_libs(root: Path, exe: str) -> list[str]:
    """Absolute paths of the libraries `exe` loads (ldd run inside the root)."""
    out = run(["chroot", str(root), "ldd", exe], what="ldd python").stdout
    libs = []
    for line in out.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1 and words[words.index("=>") + 1].startswith("/"):
            libs.append(words[words.index("=>") + 1])
        elif words and words[0].startswith("/"):
            libs.append(words[0])  # the loader itself: /lib64/ld-linux-x86-64.so.2
    return list(dict.fromkeys(libs))
