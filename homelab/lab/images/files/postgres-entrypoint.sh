#!/usr/bin/env bash
# homelab lab build of docker.io/library/postgres: the parts of the upstream docker-entrypoint.sh
# contract homelab relies on, written for Debian's postgresql-17:
#   - POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER
#     (default postgres), POSTGRES_DB (default: the user), each also as *_FILE
#   - POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256 for "host all all all")
#   - on an empty PGDATA only: initdb, create the database, run /docker-entrypoint-initdb.d/
#     (*.sh sourced or executed, *.sql and *.sql.gz through psql), then start for real
#   - an existing PGDATA is started as it is (no init, no scripts)
#   - started as root: PGDATA chowned and the server run as postgres (uid 999)
# Not here: POSTGRES_INITDB_WALDIR, *.sql.xz / *.sql.zst, the "docker_*" function library.
set -Eeo pipefail

file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

psql_run() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

process_init_files() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"; "$f"
				else
					echo "$0: sourcing $f"; . "$f"
				fi
				;;
			*.sql) echo "$0: running $f"; psql_run --dbname "$POSTGRES_DB" -f "$f"; echo ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
			*) echo "$0: ignoring $f" ;;
		esac
	done
}

init_database() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<-'EOM'
		Error: Database is uninitialized and superuser password is not specified.
		       You must specify POSTGRES_PASSWORD to a non-empty value for the
		       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
		EOM
		exit 1
	fi
	# the password goes through a pipe, never an argument
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
	{
		echo
		if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
			echo '# warning trust is enabled for all connections'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >> "$PGDATA/pg_hba.conf"
	# a temporary server on the unix socket only: nothing outside sees a half-made database
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		local exists
		exists="$(psql_run --dbname postgres --set db="$POSTGRES_DB" --tuples-only \
			<<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
		if [ -z "$exists" ]; then
			psql_run --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
		fi
	fi
	process_init_files
	PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
}

main() {
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = 'postgres' ]; then
		: "${PGDATA:=/var/lib/postgresql/data}"
		if [ "$(id -u)" = '0' ]; then
			mkdir -p "$PGDATA"
			chmod 00700 "$PGDATA" || :
			find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
			mkdir -p /var/run/postgresql
			chown postgres:postgres /var/run/postgresql
			chmod 3777 /var/run/postgresql
			exec gosu postgres "$BASH_SOURCE" "$@"
		fi
		file_env POSTGRES_PASSWORD
		file_env POSTGRES_USER 'postgres'
		file_env POSTGRES_DB "$POSTGRES_USER"
		file_env POSTGRES_INITDB_ARGS
		: "${POSTGRES_HOST_AUTH_METHOD:=}"
		if [ -z "$POSTGRES_HOST_AUTH_METHOD" ]; then
			POSTGRES_HOST_AUTH_METHOD='scram-sha-256'
		fi
		if [ ! -s "$PGDATA/PG_VERSION" ]; then
			init_database
		else
			echo
			echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
			echo
		fi
	fi
	exec "$@"
}

main "$@"
