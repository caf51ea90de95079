set -eu
A=/srv/homelab/miniflux
compose() { r=$1; shift; docker compose -p miniflux --project-directory "$A" -f "$A/releases/$r/compose.yaml" --env-file "$A/secrets.env" "$@"; }
up() { compose "$1" up -d --wait --wait-timeout 120 --remove-orphans; }
switch() { ln -sfn "releases/$1" "$A/current.new" && mv -T "$A/current.new" "$A/current"; }
current() { r=$(readlink "$A/current" 2>/dev/null) || return 0; echo "${r##*/}"; }
report() { for c in $(docker compose -p miniflux ps -a -q); do docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c"; docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{json .Output}}{{println}}{{end}}{{end}}' "$c" | grep . | tail -n 2 | sed -E 's/^(.{60}).*(.{200})$/\1 ... \2/; s/^/  health: /'; docker logs --tail 20 "$c" 2>&1 | sed 's/^/  log: /'; done; }
[ -d "$A" ] || { echo "absent"; exit 0; }
cur=$(current)
if [ -n "$cur" ] && [ -f "$A/releases/$cur/compose.yaml" ]; then compose "$cur" down --remove-orphans >&2; else docker compose -p miniflux down --remove-orphans >&2; fi
rm -f "$A/current"
rm -rf -- "$A"; echo "purged"
