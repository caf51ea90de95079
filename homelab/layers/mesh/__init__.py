"""Layer 1, mesh: the WireGuard network between every node (home NAT included)."""
from homelab.layers.mesh.layer import MeshLayer

__all__ = ["MeshLayer"]
