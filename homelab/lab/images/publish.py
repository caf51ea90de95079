"""Build the lab images (cached) and push them into the lab registry under their mirror paths."""
from __future__ import annotations

import logging
from pathlib import Path

from homelab.lab.config import LabError
from homelab.lab.images import oci
from homelab.lab.images.build import BuiltImage, ImageCache, ensure_built
from homelab.lab.images.catalog import CATALOG, ImageSpec
from homelab.lab.images.refs import mirror_path
from homelab.lab.images.registry import REGISTRY_NAME, REGISTRY_PORT, RegistryClient
from homelab.lab.system import Timer

log = logging.getLogger("homelab.lab")
MIRROR = f"{REGISTRY_NAME}:{REGISTRY_PORT}"  # what lab hosts pull from


def lab_ref(spec: ImageSpec, tag: str | None = None) -> str:
    """Where a lab host pulls an image: labrepo:5000/<mirror path>:<tag>."""
    return f"{MIRROR}/{mirror_path(spec.ref)}:{tag or spec.tag}"


def ensure_published(cache: Path, mirror: str, client: RegistryClient, keys: list[str] | None = None) -> dict[str, str]:
    """Every asked image built and in the registry with all its tags; returns key -> lab ref."""
    t = Timer()
    built = ensure_built(cache, mirror, keys)
    ic = ImageCache(cache)
    pushed = [key for key, image in built.items() if push(ic, client, CATALOG[key], image)]
    if pushed:
        log.info("lab images: pushed %s in %s", " ".join(pushed), t)
    return {key: lab_ref(CATALOG[key]) for key in built}


def push(ic: ImageCache, client: RegistryClient, spec: ImageSpec, image: BuiltImage) -> bool:
    """Upload blobs and tag the manifest in each of its repositories, unless every tag already
    points at it; True if it pushed."""
    pushed = False
    for upstream in (spec.upstream, *spec.also_as):
        repo = mirror_path(f"{upstream}:{spec.tag}")
        if all(client.manifest_digest(repo, tag, oci.MANIFEST_TYPE) == image.manifest for tag in spec.tags):
            continue
        for digest in (image.config, *image.layers):
            client.upload_blob(repo, digest, ic.blob(digest))
        data = ic.blob(image.manifest).read_bytes()
        for tag in spec.tags:
            got = client.put_manifest(repo, tag, data, oci.MANIFEST_TYPE)
            if got and got != image.manifest:
                raise LabError(f"registry stored {repo}:{tag} as {got}, built {image.manifest}")
        pushed = True
    return pushed
