"""Layer 5, ingress: Caddy sites from the apps' HTTP claims, TLS, DNS records, Anubis per app."""
from __future__ import annotations

from homelab.layers.ingress.layer import IngressLayer

__all__ = ["IngressLayer"]
