"""Entry point of the frozen executable (same as the `homelab` console script)."""
from homelab.cli import main

raise SystemExit(main())
