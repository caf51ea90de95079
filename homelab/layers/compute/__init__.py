"""Layer 3, compute: the machines everything runs on (adopted over SSH, or Hetzner servers)."""
from homelab.layers.compute.layer import ComputeLayer

__all__ = ["ComputeLayer"]
