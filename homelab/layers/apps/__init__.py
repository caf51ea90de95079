"""Layer 6 (apps), the on-host mechanics: Docker, releases with a health gate and rollback,
image pins, offline bundles, monitors.

Everything here is a pure renderer or parser (scripts, compose files, daemon.json, probe
output) plus a small I/O helper (bundle transfer over SFTP). `layer.py` wires them into
plan/apply/status through the pure per-host diff in `plan.py`; nothing here imports another layer.
"""
from homelab.layers.apps.layer import AppsLayer

__all__ = ["AppsLayer"]
