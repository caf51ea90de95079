"""The downloadable `homelab` file: PyInstaller's one-dir build behind a small sh launcher.

Why not PyInstaller's own one-file: its bootloader unpacks every byte (~38 MB, mostly libpython
and cryptography) into a fresh temp dir at EVERY start and deletes it at exit, which costs
0.3-0.5 s before any of our code runs (bench/startup.py). This file unpacks once, into a cache
dir named by the payload's hash, and every later start is an `exec` of the one-dir build there
(~0.1 s). It needs only what every Debian/Ubuntu/Raspberry Pi OS has (Essential packages: dash,
coreutils, tar, gzip), so "nothing on the server" still holds.

Unpacking is atomic (a temp dir, then `mv -T`; a start that loses the race uses the winner's
copy) and a truncated download fails with a message instead of running half a tree.

    python build/selfextract.py DIST_DIR/homelab.d OUT_FILE
"""
from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

TREE = "homelab.d"  # the one-dir build's folder name inside the payload and the cache
SKIP = "@SKIP@"  # replaced by a fixed-width byte offset: the launcher's own length + 1

LAUNCHER = """\
#!/bin/sh
# homelab: PyInstaller's one-dir build with this launcher in front (build/selfextract.py).
# The first start unpacks it into a cache dir named by its hash; later starts run it there.
set -eu
hash=@HASH@
cache="${HOMELAB_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/homelab}"
dir="$cache/$hash"
if [ ! -x "$dir/@TREE@/homelab" ]; then
  if ! mkdir -p "$cache" 2>/dev/null; then
    echo "homelab: cannot create $cache: set HOMELAB_CACHE_DIR to a writable directory" >&2
    exit 1
  fi
  tmp=$(mktemp -d "$cache/.unpack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT TERM
  if ! tail -c +@SKIP@ "$0" | tar -xzf - --no-same-owner -C "$tmp" 2>/dev/null; then
    echo "homelab: $0 is damaged (its archive does not unpack): download it again" >&2
    exit 1
  fi
  mv -T "$tmp" "$dir" 2>/dev/null || [ -x "$dir/@TREE@/homelab" ]  # lost a race: the winner's copy
  rm -rf "$tmp"
  trap - EXIT
  # versions unpacked over a week ago are only a cache: another start re-unpacks its own
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$hash" ! -name '.unpack.*' -mtime +7 \\
    -exec rm -rf {} + 2>/dev/null || true
fi
exec "$dir/@TREE@/homelab" "$@"
"""


def payload(tree: Path) -> bytes:
    """The tree as tar.gz, owned by root with fixed times, so the same build gives the same hash."""
    buf = io.BytesIO()

    def norm(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    # gzip's header carries a time too: 0, or every build would be a new file (and cache dir)
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w") as tar:
            tar.add(str(tree), arcname=TREE, filter=norm)
    return buf.getvalue()


def render_launcher(digest: str) -> bytes:
    """The sh header for a payload of this sha256; `tail -c +N` starts at its byte N (1-based)."""
    text = LAUNCHER.replace("@HASH@", digest[:20]).replace("@TREE@", TREE)
    width = len(SKIP)  # the offset is written in place of the marker, zero-padded: the length stays
    probe = text.replace(SKIP, "0" * width).encode()
    skip = str(len(probe) + 1).zfill(width)
    assert len(skip) == width, "launcher longer than the offset field"
    return text.replace(SKIP, skip).encode()


def build(tree: Path, out: Path) -> Path:
    data = payload(tree)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(render_launcher(hashlib.sha256(data).hexdigest()) + data)
    tmp.chmod(0o755)
    tmp.replace(out)
    return out


if __name__ == "__main__":
    built = build(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{built}: {built.stat().st_size / 1e6:.1f} MB")
