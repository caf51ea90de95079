"""Image pins: a recipe names `repository:tag`; the first pull records what that tag meant.

The lock file sits beside the config (`config.yaml` -> `config.images.lock`), JSON, written
atomically like the state file, and is meant to be committed with the config. A pin never
moves by itself: `update` moves it deliberately and says old -> new.

Each pin keeps two digests, because they answer different questions:
- `digest`, the registry's manifest digest (`repo@sha256:...` from RepoDigests): what a host
  pulls, so every host gets the very bytes the pin names, whatever the tag says today;
- `image_id`, the image's config digest (`docker image inspect .Id`): what compose files run.
  It is the same on every host however the image arrived — pulled, or `docker load`ed from a
  bundle. A load leaves RepoDigests empty (checked on Docker 26.1.5: after `docker save` +
  `docker load`, `repo@sha256:...` no longer resolves while the id does), so a compose file
  naming `repo@sha256:` would try to pull on an offline host. Images built or imported
  locally (the lab's `docker import`) have no registry digest at all; they pin by id only.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from homelab.errors import HomelabError
from homelab.state import write_atomic

LOCK_VERSION = 1
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
# repository[:tag], registry host optional (docker's grammar, restricted to what recipes need)
IMAGE_REF = re.compile(r"(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+(?=/))?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
                       r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImagePin:
    """What `ref` (repository:tag) was when first pulled."""

    ref: str
    image_id: str  # sha256:... config digest: what compose runs
    digest: str = ""  # sha256:... manifest digest in the registry; "" for local-only images

    @property
    def repository(self) -> str:
        return split_ref(self.ref)[0]

    @property
    def pull_ref(self) -> str:
        """What a host pulls: the repository at the pinned manifest digest."""
        if not self.digest:
            raise HomelabError(f"image {self.ref} was never pulled from a registry (pinned by id only)",
                               "load it from a bundle: homelab apply --bundle FILE")
        return f"{self.repository}@{self.digest}"

    def describe(self) -> str:
        return f"{self.ref}@{self.digest or self.image_id}"


def split_ref(ref: str) -> tuple[str, str]:
    """"postgres:17" -> ("postgres", "17"); a missing tag is refused (recipes pin tags)."""
    m = IMAGE_REF.fullmatch(ref)
    if not m or not m.group("tag"):
        raise HomelabError(f"image {ref!r} is not repository:tag", "name a tag, e.g. postgres:17.6 (never :latest)")
    return m.group("repo"), m.group("tag")


def normalize_repository(repo: str) -> str:
    """Docker's long form: "postgres" -> "docker.io/library/postgres", "ghcr.io/a/b" stays."""
    first = repo.split("/")[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return repo
    return f"{DOCKER_HUB}/{repo}" if "/" in repo else f"{DOCKER_HUB}/library/{repo}"


def mirrored(repository: str, mirror: str) -> str:
    """Where a mirror serves a repository: its path kept, Docker Hub's host dropped.

    docker.io/syncthing/syncthing -> MIRROR/syncthing/syncthing (library/ kept for official
    images); ghcr.io/miniflux/miniflux -> MIRROR/ghcr.io/miniflux/miniflux, so two registries'
    paths cannot collide."""
    full = normalize_repository(repository)
    host, path = full.split("/", 1)
    return f"{mirror}/{path}" if host == DOCKER_HUB else f"{mirror}/{full}"


def pull_ref(pin: ImagePin, mirror: str | None = None) -> str:
    """The reference a host pulls for a pin (through the mirror when the site has one)."""
    ref = pin.pull_ref
    return ref if not mirror else f"{mirrored(pin.repository, mirror)}@{pin.digest}"


def parse_inspect(ref: str, line: str, source: str | None = None) -> ImagePin:
    """One line of `docker image inspect --format '{{.Id}} {{json .RepoDigests}}' SOURCE`.

    `source` is the reference actually pulled (a mirror's), when it differs from `ref`: the
    manifest digest is the same bytes wherever they are served from."""
    parts = line.strip().split(" ", 1)
    if len(parts) != 2 or not SHA256.fullmatch(parts[0]):
        raise HomelabError(f"image {ref}: unexpected `docker image inspect` output {line.strip()[:120]!r}")
    try:
        digests = json.loads(parts[1]) or []
    except ValueError:
        raise HomelabError(f"image {ref}: RepoDigests is not JSON: {parts[1][:120]!r}") from None
    repo = normalize_repository(split_ref(source or ref)[0])
    # RepoDigests lists one entry per repository the image came from; take the pulled one's
    digest = next((d.split("@", 1)[1] for d in digests
                   if "@" in d and normalize_repository(d.split("@", 1)[0]) == repo), "")
    return ImagePin(ref, parts[0], digest)


def render_pull_probe(refs: list[str], mirror: str | None = None) -> str:
    """Pull each not-yet-pinned ref by tag (the one time a tag is trusted), then inspect it.

    Output per ref: `pin REF SOURCE ID DIGESTS-JSON`, or `pull-failed REF` (reason on stderr).
    Through a mirror the image is also tagged REF, so compose and bundles find it by name."""
    lines = []
    for ref in refs:
        repo, tag = split_ref(ref)
        source = f"{mirrored(repo, mirror)}:{tag}" if mirror else ref
        q, s = shlex.quote(ref), shlex.quote(source)
        fetch = f"docker pull -q {s} >/dev/null" + (f" && docker tag {s} {q}" if mirror else "")
        lines.append(f"if {fetch}; then echo \"pin {ref} {source} $(docker image inspect --format "
                     f"'{{{{.Id}}}} {{{{json .RepoDigests}}}}' {s})\"; else echo 'pull-failed {ref}'; fi")
    return "\n".join(lines) + "\n"


def parse_pull_probe(text: str) -> tuple[dict[str, ImagePin], list[str]]:
    """-> (pins by ref, refs that could not be pulled)."""
    pins: dict[str, ImagePin] = {}
    failed: list[str] = []
    for line in text.splitlines():
        if line.startswith("pin "):
            _, ref, source, rest = line.split(" ", 3)
            pins[ref] = parse_inspect(ref, rest, source)
        elif line.startswith("pull-failed "):
            failed.append(line.split(" ", 1)[1])
    return pins, failed


# ---------------------------------------------------------------------- the lock ----

@dataclass(frozen=True)
class PinMove:
    """A pin that `update` moved (or recorded the first time: old is None)."""

    ref: str
    old: ImagePin | None
    new: ImagePin

    def describe(self) -> str:
        if self.old is None:
            return f"{self.ref}: pinned {self.new.digest or self.new.image_id}"
        return f"{self.ref}: {self.old.digest or self.old.image_id} -> {self.new.digest or self.new.image_id}"


def lock_path(config_path: Path) -> Path:
    return config_path.with_name(config_path.stem + ".images.lock")


def record(lock: Mapping[str, ImagePin], seen: Mapping[str, ImagePin]) -> tuple[dict[str, ImagePin], list[PinMove]]:
    """Pin refs seen for the first time; a pinned ref keeps its pin whatever the tag says now."""
    out = dict(lock)
    moves = [PinMove(ref, None, pin) for ref, pin in sorted(seen.items()) if ref not in lock]
    out.update({m.ref: m.new for m in moves})
    return out, moves


def update(lock: Mapping[str, ImagePin], ref: str, seen: ImagePin) -> tuple[dict[str, ImagePin], PinMove | None]:
    """Move one pin deliberately; None when the tag still means the pinned image."""
    old = lock.get(ref)
    if old is not None and (old.image_id, old.digest) == (seen.image_id, seen.digest):
        return dict(lock), None
    return {**lock, ref: seen}, PinMove(ref, old, seen)


def render_lock(lock: Mapping[str, ImagePin]) -> str:
    images = {ref: {"image_id": p.image_id, **({"digest": p.digest} if p.digest else {})}
              for ref, p in sorted(lock.items())}
    return json.dumps({"version": LOCK_VERSION, "images": images}, indent=2, sort_keys=True) + "\n"


def parse_lock(text: str, where: str = "images.lock") -> dict[str, ImagePin]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise HomelabError(f"{where} is not JSON: {exc}", f"restore it from {where}.prev or version control") from None
    if not isinstance(doc, dict) or doc.get("version") != LOCK_VERSION:
        raise HomelabError(f"{where} has version {doc.get('version') if isinstance(doc, dict) else '?'}, "
                           f"this homelab reads version {LOCK_VERSION}")
    out = {}
    for ref, entry in (doc.get("images") or {}).items():
        image_id, digest = entry.get("image_id", ""), entry.get("digest", "")
        if not SHA256.fullmatch(image_id) or (digest and not SHA256.fullmatch(digest)):
            raise HomelabError(f"{where}: pin of {ref} is damaged (image_id {image_id!r}, digest {digest!r})",
                               f"run `homelab apps update CONFIG APP` to pin {ref} again")
        split_ref(ref)
        out[ref] = ImagePin(ref, image_id, digest)
    return out


def load_lock(path: Path) -> dict[str, ImagePin]:
    return parse_lock(path.read_text(), str(path)) if path.exists() else {}


def save_lock(path: Path, lock: Mapping[str, ImagePin]) -> None:
    # no secrets in here, and it belongs in version control next to the config
    write_atomic(path, render_lock(lock), mode=0o644)
