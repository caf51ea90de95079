"""Layer 2, permissions: operator users, hardened sshd, nftables firewall, security updates."""
from homelab.layers.permissions.layer import PermissionsLayer

__all__ = ["PermissionsLayer"]
