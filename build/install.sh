#!/usr/bin/env bash
# Installs everything homelab and its tests need on a fresh Debian/Ubuntu machine (as root):
# the lab's host tools from the distribution, and a virtualenv (.venv) with homelab in it.
# Idempotent; safe to run again. `--tests` adds what only the tests use: Debian's Chromium and
# certutil (homelab/lab/browser.py; about 110 MB to download, 20 s on the CI machine's mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "build/install.sh: run as root (the lab needs it)" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
# e2fsprogs: tests/e2e/test_storage_disks.py writes and reads an ext3 lab disk from outside (mkfs, debugfs)
need=(debootstrap systemd-container apt-utils iproute2 nftables openssh-client util-linux dpkg-dev e2fsprogs
      python3 python3-venv python3-pip tmux ca-certificates debian-archive-keyring)
if [ "${1:-}" = --tests ]; then need+=(chromium libnss3-tools); fi
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # another install (a second checkout's test run) may hold the dpkg lock: wait for it
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e '.[test,build,bench]'
# bytecode now: an editable install has none, and PYTHONDONTWRITEBYTECODE would mean every run recompiles
.venv/bin/python -m compileall -q homelab >/dev/null
echo "installed: $(.venv/bin/homelab --version) in $(pwd)/.venv" >&2
