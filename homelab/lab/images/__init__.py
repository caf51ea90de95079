"""Container images for the lab: lab builds of real upstream images, an Anubis stand-in, and
the lab registry that serves them (see catalog.py for the table, registry.py for the registry).

    lab = Lab(); lab.up(1)
    refs = lab.ensure_images()        # {"postgres": "labrepo:5000/library/postgres:17.12", ...}
    lab.run("h1", f"docker pull {refs['postgres']}")

`refs.mirror_ref()` maps any upstream reference onto a mirror the same way.
"""
from __future__ import annotations
