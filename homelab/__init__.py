"""homelab: bare machines and Hetzner Cloud servers to running, backed-up, monitored apps."""

__version__ = "0.1.0"

from homelab import class_cache  # noqa: E402  (before any module of ours makes a dataclass)

class_cache.install()
