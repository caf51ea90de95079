"""Config: the YAML file that is the source of truth, parsed with positions and validated."""
from homelab.config.schema import Config, load_config, parse_config

__all__ = ["Config", "load_config", "parse_config"]
