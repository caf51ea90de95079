"""Layer 5, ingress: Caddy sites from route claims, TLS, DNS records, Anubis per app.

The Layer class is wired in once the layer contract (registry, claims) lands.
"""
