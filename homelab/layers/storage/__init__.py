"""Layer 4, storage and backups: the pure building blocks.

- `restserver`: rest-server's /etc/default file, its drop-in and the htpasswd file;
- `repo`: how a host reaches a repository (URL, credentials env file, file paths);
- `scripts`: the backup, drill, check and prune scripts and their shared status helpers;
- `units`: systemd services, timers and mount units;
- `disks`: is this block device the one the config names, and is it empty?
- `monitors`: backup age, exit 3, drill, check, free space, append-only, from probe output.

- `probes`: what the layer reads on a host (no restic call, short timeouts); `plan`: the pure
  diff; `status`: the monitors of a run; `layer`: the glue (`StorageLayer`); `cli`: `homelab backup`.
"""
from homelab.layers.storage.layer import StorageLayer

__all__ = ["StorageLayer"]
