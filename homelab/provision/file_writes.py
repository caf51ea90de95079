"""Files written on hosts are replaced whole or not at all: temp file + rename, and a full disk
is told as such.

pyinfra's connectors write an upload straight onto the destination (SFTP as the login user)
or `cp` it there from /tmp (with sudo): on a full filesystem that leaves the destination
truncated, half a config, and says "Failure" or only logs cp's error. The worker wraps
`put_file` (worker.atomic_put): the upload goes to a temp name beside the destination, which
then takes the old file's mode and owner and is renamed over it (rename(2) is atomic within a
filesystem). On failure both temp files go and `render_failure` says why, naming the mount.

Pure: command builders and parsers; the worker runs them.
"""
from __future__ import annotations

import posixpath
import shlex

TEMP_MARK = ".homelab-"  # in every temp name beside a destination: `.wg0.conf.homelab-1a2b3c4d`


def temp_beside(dest: str, token: str) -> str:
    """The temp name in the destination's own directory (same filesystem: rename is atomic)."""
    directory, base = posixpath.split(dest)
    return posixpath.join(directory or ".", f".{base}{TEMP_MARK}{token}")


def render_move_into_place(temp: str, dest: str) -> str:
    """sh: give the new file the old one's mode and owner, then rename it over the old one.

    A destination that is a symlink is written through (as pyinfra did): renaming over it
    would replace the link itself."""
    t, d = shlex.quote(temp), shlex.quote(dest)
    return (f"if [ -L {d} ]; then cat {t} > {d} && rm -f {t}; "
            f"else {{ [ ! -e {d} ] || {{ chmod --reference={d} {t} && chown --reference={d} {t}; }}; }} "
            f"&& mv -f {t} {d}; fi")


def render_cleanup(*paths: str) -> str:
    return "rm -f " + " ".join(shlex.quote(p) for p in paths if p)


def render_space_probe(dest: str) -> str:
    """sh: `AVAIL_KB MOUNT` of the filesystem that holds dest's directory."""
    directory = posixpath.dirname(dest) or "."
    return f"df -Pk {shlex.quote(directory)} | awk 'NR==2 {{print $4, $6}}'"


def parse_space(output: str) -> tuple[int, str] | None:
    parts = output.split()
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]


def render_failure(host: str, dest: str, size: int, space: tuple[int, str] | None, error: str) -> tuple[str, str]:
    """(message, hint) for a write that failed: "no space left on <mount> on <host>" when its
    filesystem has less room than the file (or the error says ENOSPC), else the error itself."""
    nothing = f"{dest} is as it was, nothing half-written left"
    no_space = "No space left" in error or (space is not None and space[0] * 1024 < size + 4096)
    if no_space:
        mount = space[1] if space else posixpath.dirname(dest)
        free = f"{space[0]} KiB free" if space else "full"
        return (f"no space left on {mount} on {host} (writing {dest}, {size} bytes; {free}): {nothing}",
                f"free space on {mount} of {host} (`df -h {mount}`), then apply again")
    return (f"writing {dest} on {host} failed: {error.strip() or 'the upload failed'}: {nothing}",
            "see the run log; the next apply retries it")
