"""homelab: bare machines and Hetzner Cloud servers to running, backed-up, monitored apps."""

__version__ = "0.1.0"
