"""Entry point of the frozen executable (same as the `homelab` console script)."""
import os

from homelab.frozen import restore_system_env

restore_system_env(os.environ)  # children run the system's programs with the system's libraries

from homelab.cli import main  # noqa: E402

raise SystemExit(main())
