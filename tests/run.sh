#!/usr/bin/env bash
# The whole test suite, lab included: `sudo tests/run.sh` from a clone (installs what it needs).
# Unit and TUI tests run anywhere; lab tests need root and bring up throwaway Debian hosts
# (systemd-nspawn) — they skip with a reason elsewhere. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash build/install.sh
# a lab left behind by a killed run would hold the bridge, mounts and namespaces
.venv/bin/homelab lab down >/dev/null 2>&1 || true
trap '.venv/bin/homelab lab down >/dev/null 2>&1 || true' EXIT
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
