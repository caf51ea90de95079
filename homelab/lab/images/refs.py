"""Image references and the registry-mirror mapping (pure).

A mirror keeps upstream paths, so one prefix serves images of several registries:

    docker.io/syncthing/syncthing:1.29.5  -> labrepo:5000/syncthing/syncthing:1.29.5
    postgres:17                           -> labrepo:5000/library/postgres:17
    ghcr.io/miniflux/miniflux:2.2.6       -> labrepo:5000/ghcr.io/miniflux/miniflux:2.2.6

Docker Hub images lose their registry name (as with Docker's own `registry-mirrors`, which
only ever mirror Docker Hub); images of any other registry keep it as their first path
component, so `ghcr.io/a/b` and a Docker Hub `a/b` cannot collide. A digest stays as it is:
the mirror serves the same manifest bytes, so `@sha256:...` pins still hold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}
# distribution's grammar, simplified: lowercase path components, tag, optional digest
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "docker.io", "ghcr.io", "labrepo:5000"
    path: str  # "library/postgres"
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        out = f"{self.registry}/{self.path}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_ref(ref: str) -> ImageRef:
    """Docker's normalisation: no registry -> docker.io, one component -> library/NAME, no tag -> latest."""
    rest, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"image {ref!r}: bad digest {digest!r}")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, rest = first, remainder
    else:
        registry = DOCKER_HUB
    registry = DOCKER_HUB if registry in _HUB_ALIASES else registry
    last = rest.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
        if not _TAG.match(tag):
            raise ValueError(f"image {ref!r}: bad tag {tag!r}")
    if registry == DOCKER_HUB and "/" not in rest:
        rest = f"library/{rest}"
    if not rest or not all(_COMPONENT.match(c) for c in rest.split("/")):
        raise ValueError(f"image {ref!r}: bad repository path {rest!r}")
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry, rest, tag, digest)


def mirror_path(ref: str | ImageRef) -> str:
    """The repository path an image has in a mirror: Docker Hub's without, others' with the registry."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    return r.path if r.registry == DOCKER_HUB else f"{r.registry}/{r.path}"


def mirror_ref(ref: str, mirror: str) -> str:
    """`ref` as pulled through `mirror` ("labrepo:5000", optionally with a path prefix)."""
    r = parse_ref(ref)
    host, _, prefix = mirror.strip("/").partition("/")
    path = "/".join(p for p in (prefix, mirror_path(r)) if p)
    return str(ImageRef(host, path, r.tag, r.digest))
