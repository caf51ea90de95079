#!/bin/sh
# homelab lab build of docker.io/valkey/valkey: the upstream entrypoint's contract (options or a
# .conf as first argument imply valkey-server; as root: chown the workdir, drop to valkey; umask
# 0077 instead of 0022). Upstream compiles protected-mode off; Debian's binary has it on, so it is
# turned off here unless the command line sets it (a config file may still set it).
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- valkey-server "$@"
fi

if [ "$1" = 'valkey-server' ] && [ "$(id -u)" = '0' ]; then
    find . \! -user valkey -exec chown valkey '{}' +
    exec setpriv --reuid=valkey --regid=valkey --clear-groups -- "$0" "$@"
fi

if [ "$1" = 'valkey-server' ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *)
            shift
            if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then  # a config file comes first
                conf="$1"; shift
                set -- valkey-server "$conf" --protected-mode no "$@"
            else
                set -- valkey-server --protected-mode no "$@"
            fi
            ;;
    esac
fi

um="$(umask)"
if [ "$um" = '0022' ]; then
    umask 0077
fi
exec "$@"
