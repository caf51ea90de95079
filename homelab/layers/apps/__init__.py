"""Layer 6 (apps), the on-host mechanics: Docker, releases with a health gate and rollback,
image pins, offline bundles, monitors.

Everything here is a pure renderer or parser (scripts, compose files, daemon.json, probe
output) plus two small I/O helpers (the pin lock file, bundle transfer over SFTP). The Layer
class that wires these into plan/apply/status comes with the layer contract and the recipe
parser; nothing here imports another layer.
"""
