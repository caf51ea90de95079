#!/bin/sh
# homelab lab build of docker.io/tomsquest/docker-radicale: the upstream entrypoint's contract
# (UID/GID remap the radicale user, TAKE_FILE_OWNERSHIP=true chowns /data and /config, radicale
# runs as that user when started as root). Upstream uses su-exec on Alpine; here setpriv.
set -e

if [ -n "${UID:-}" ] || [ -n "${GID:-}" ]; then
    if [ "${UID:-}" != "$(id -u radicale)" ] || [ "${GID:-}" != "$(id -g radicale)" ]; then
        if grep -qE '\s/\s\S+\sro[\s,]' /proc/mounts; then
            echo "You specified custom UID/GID (UID: ${UID:-}, GID: ${GID:-})."
            echo "UID/GID can only be changed when not running the container with --read-only."
            exit 1
        fi
        [ -n "${UID:-}" ] && usermod -o -u "$UID" radicale
        [ -n "${GID:-}" ] && groupmod -o -g "$GID" radicale
    fi
fi

if [ "$(id -u)" = "0" ] && [ "${TAKE_FILE_OWNERSHIP:-}" = "true" ]; then
    chown -R radicale:radicale /data /config
fi

if [ "$(id -u)" = "0" ] && [ "$1" = "/venv/bin/radicale" ]; then
    exec setpriv --reuid=radicale --regid=radicale --init-groups "$@"
fi
exec "$@"
