#!/usr/bin/env bash
# The whole test suite, lab included: `sudo tests/run.sh` from a clone (installs what it needs).
# Unit and TUI tests run anywhere; lab tests need root and bring up throwaway Debian hosts
# (systemd-nspawn) — they skip with a reason elsewhere. Extra arguments go to pytest.
#
# Each run holds a lab instance nobody else holds (the lowest free of 10-40, an flock kept on a
# file descriptor until this script ends; homelab/lab/instances.py), so two runs on one machine
# never touch each other's hosts. LAB_KEEP_UP=1 leaves the run's lab up for debugging.
set -euo pipefail
cd "$(dirname "$0")/.."
# two runs from one checkout share .venv: one pip at a time (the lock is on the script itself)
flock build/install.sh bash build/install.sh --tests  # --tests: Chromium for the ingress e2e

read -r first last lock_dir < <(.venv/bin/python -m homelab.lab.instances)
mkdir -p "$lock_dir"
instance=
for n in $(seq "$first" "$last"); do
  exec {lock_fd}<>"$lock_dir/$n.lock"  # no truncation before the lock is ours: the holder's PID stays
  if flock -n "$lock_fd"; then instance=$n; break; fi
  exec {lock_fd}>&-
done
if [ -z "$instance" ]; then
  echo "tests/run.sh: every test lab instance ($first-$last) is held by a running test run ($lock_dir)" >&2
  exit 1
fi
echo "$$" >"$lock_dir/$instance.lock"
export HOMELAB_LAB_INSTANCE=$instance HOMELAB_LAB_HELD_BY=$$
echo "tests/run.sh: lab instance $instance" >&2

lab_down() { .venv/bin/homelab lab down >/dev/null 2>&1 || true; }
# a lab a killed run of this instance left would hold the bridge, mounts and namespaces;
# the lock proves that run is gone
lab_down
# not exec: the trap must run after pytest, and only this run's instance is taken down
trap 'if [ "${LAB_KEEP_UP:-}" = 1 ]; then echo "tests/run.sh: lab $instance left up" >&2; else lab_down; fi' EXIT
.venv/bin/python -m pytest -p no:cacheprovider "$@"
