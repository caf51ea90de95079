#!/bin/sh
# homelab lab build of docker.io/syncthing/syncthing: the upstream entrypoint's contract
# (UMASK, PUID/PGID, HOME chowned, drop privileges when started as root). Not supported: PCAP.
set -eu

[ -n "${UMASK:-}" ] && umask "$UMASK"

if [ "$(id -u)" = '0' ]; then
  mkdir -p "$HOME"
  chown "$PUID:$PGID" "$HOME" || true
  exec setpriv --reuid="$PUID" --regid="$PGID" --clear-groups env HOME="$HOME" "$@"
fi
exec "$@"
