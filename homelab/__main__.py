"""`python -m homelab` runs the CLI."""
from homelab.cli import main

raise SystemExit(main())
