set -eu
A=/srv/homelab/miniflux
compose() { r=$1; shift; docker compose -p miniflux --project-directory "$A" -f "$A/releases/$r/compose.yaml" --env-file "$A/secrets.env" "$@"; }
up() { compose "$1" up -d --wait --wait-timeout 120 --remove-orphans; }
switch() { ln -sfn "releases/$1" "$A/current.new" && mv -T "$A/current.new" "$A/current"; }
current() { r=$(readlink "$A/current" 2>/dev/null) || return 0; echo "${r##*/}"; }
report() { for c in $(docker compose -p miniflux ps -a -q); do docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c"; docker inspect -f '{{if .State.Health}}{{range .State.Health.Log}}exit {{.ExitCode}}: {{json .Output}}{{println}}{{end}}{{end}}' "$c" | grep . | tail -n 2 | sed -E 's/^(.{60}).*(.{200})$/\1 ... \2/; s/^/  health: /'; docker logs --tail 20 "$c" 2>&1 | sed 's/^/  log: /'; done; }
mkdir -p "$A/releases" "$A/data"
( umask 077; [ -f "$A/secrets.env" ] || : > "$A/secrets.env" )
chmod 600 "$A/secrets.env"
grep -q '^HOMELAB_SECRET_DB_PASSWORD=' "$A/secrets.env" || printf 'HOMELAB_SECRET_DB_PASSWORD=%s\n' "$(tr -dc A-Za-z0-9 </dev/urandom | head -c 32)" >> "$A/secrets.env"
grep -q '^HOMELAB_SECRET_ADMIN=' "$A/secrets.env" || printf 'HOMELAB_SECRET_ADMIN=%s\n' "$(head -c 18 /dev/urandom | base64 -w0)" >> "$A/secrets.env"
[ -d "$A/data/"pgdata ] || { mkdir -p "$A/data/"pgdata && chown 999:999 "$A/data/"pgdata; }
docker image inspect sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb >/dev/null 2>&1 || { docker pull -q ghcr.io/miniflux/miniflux@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd >/dev/null && [ "$(docker image inspect -f '{{.Id}}' ghcr.io/miniflux/miniflux@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd)" = sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb ]; } || { echo "image ghcr.io/miniflux/miniflux:2.2.6 (sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb) is not on this host and cannot be pulled at its pin" >&2; exit 5; }
docker image inspect sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa >/dev/null 2>&1 || { docker pull -q postgres@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc >/dev/null && [ "$(docker image inspect -f '{{.Id}}' postgres@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc)" = sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ]; } || { echo "image postgres:17.6 (sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) is not on this host and cannot be pulled at its pin" >&2; exit 5; }
R=0380101e2d39
prev=$(current)
if [ ! -f "$A/releases/$R/compose.yaml" ]; then
  rm -rf "$A/releases/$R.new" && mkdir -p "$A/releases/$R.new"
  cat > "$A/releases/$R.new/compose.yaml" <<'HOMELAB_EOF'
# written by homelab: edit the config, not this file
name: miniflux
x-homelab:
  images:
    db: postgres:17.6@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc
    web: ghcr.io/miniflux/miniflux:2.2.6@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd
services:
  db:
    image: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    pull_policy: never
    restart: unless-stopped
    environment:
      POSTGRES_PASSWORD: ${HOMELAB_SECRET_DB_PASSWORD}
      POSTGRES_USER: miniflux
    volumes:
    - /srv/homelab/miniflux/data/pgdata:/var/lib/postgresql/data
    healthcheck:
      test:
      - CMD
      - pg_isready
      - -U
      - miniflux
      interval: 5s
      timeout: 3s
      retries: 10
      start_period: 10s
  web:
    image: sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    pull_policy: never
    restart: unless-stopped
    user: 1000:1000
    environment:
      ADMIN_PASSWORD: ${HOMELAB_SECRET_ADMIN}
      DATABASE_URL: postgres://miniflux:${HOMELAB_SECRET_DB_PASSWORD}@db/miniflux?sslmode=disable
      PRICE: 5$$ a month
    ports:
    - 127.0.0.1:8080:8080/tcp
    - 10.100.0.2:8081:8080/tcp
    healthcheck:
      test:
      - CMD
      - /usr/bin/miniflux
      - -healthcheck
      - auto
      interval: 2s
      timeout: 3s
      retries: 5
      start_period: 0s
    depends_on:
      db:
        condition: service_healthy
HOMELAB_EOF
  cat > "$A/releases/$R.new/release.json" <<'HOMELAB_EOF'
{
  "app": "miniflux",
  "env_file": "secrets.env",
  "images": {
    "ghcr.io/miniflux/miniflux:2.2.6": {
      "digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
      "image_id": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    },
    "postgres:17.6": {
      "digest": "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
      "image_id": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    }
  }
}
HOMELAB_EOF
  mv "$A/releases/$R.new" "$A/releases/$R"
fi
switch "$R"
if up "$R" >"$A/deploy.log" 2>&1; then
  o="$A/releases/order"
  { grep -vx "$R" "$o" 2>/dev/null || true; echo "$R"; } > "$o.new" && mv "$o.new" "$o"
  keep=$(tail -n 3 "$o"); printf "%s\n" "$keep" > "$o.new" && mv "$o.new" "$o"
  for d in "$A"/releases/*/; do d=${d%/}; printf "%s\n" "$keep" | grep -qx "${d##*/}" || rm -rf "$d"; done
  if [ "$prev" = "$R" ]; then echo "unchanged $R"; else echo "deployed $R"; fi
  exit 0
fi
echo "release $R failed its health gate:" >&2
sed "s/^/  compose: /" "$A/deploy.log" | tail -n 8 >&2
report >&2
if [ -n "$prev" ] && [ "$prev" != "$R" ] && [ -f "$A/releases/$prev/compose.yaml" ]; then
  switch "$prev"
  if up "$prev" >>"$A/deploy.log" 2>&1; then echo "rolled-back $R $prev"; exit 3; fi
  echo "rollback to $prev failed too:" >&2; report >&2
  echo "rollback-failed $R $prev"; exit 4
fi
echo "failed $R"; exit 1
