"""One Anubis per protected app, as a container on the ingress machine: pure command builders.

    /var/lib/homelab/anubis/<app>/   (0750, the container's user)
        ed25519.key   generated ON the host, once (homelab.host_secrets): 32 random bytes, hex, 0600
        policy.yaml   challenge every client (one catch-all rule)
        env           render_anubis_env (render.py), KEY=value

The container runs with host networking (Anubis and its metrics listen on 127.0.0.1 only,
render_anubis_env) as a numeric user that owns the key, `--restart unless-stopped`, from
the image id pinned in the ingress state (never the tag). Its labels say which app it guards
and a hash of everything it was started with: the probe compares that hash with the wanted
one, so a second apply changes nothing and any change of env, policy or image restarts it.
The deploy waits for the metrics `/healthz` and fails (with the container's last log lines)
if it does not come up: Caddy then answers 502 for the app — never the app unguarded.
"""
from __future__ import annotations

import hashlib
import shlex
from typing import Mapping

from homelab.host_secrets import generate_command
from homelab.layers.ingress.probes import ANUBIS_LABEL, SPEC_LABEL
from homelab.layers.ingress.render import ANUBIS_KEY_FILE, ANUBIS_POLICY_FILE, render_env_file

ROOT = "/var/lib/homelab/anubis"
USER = "1000:1000"  # numeric: works in any image (distroless Anubis has no passwd entry for it)
HEALTH_WAIT = 30  # s the deploy waits for /healthz
# Anubis's policy format (botPolicies): one rule that challenges every request
POLICY = """\
# Managed by homelab (layer 5, ingress): every client without a valid cookie is challenged.
bots:
  - name: homelab-challenge-everyone
    path_regex: .*
    action: CHALLENGE
"""


def container_name(app: str) -> str:
    return f"homelab-anubis-{app}"


def app_dir(app: str) -> str:
    return f"{ROOT}/{app}"


def spec_hash(image_id: str, env: Mapping[str, str], policy: str = POLICY) -> str:
    """What the container is started with, in 16 hex digits (its SPEC_LABEL)."""
    body = "\n".join([image_id, USER, render_env_file(env), policy])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def render_deploy_script(app: str, image_id: str, env: Mapping[str, str], metrics_port: int) -> str:
    d = app_dir(app)
    qd = shlex.quote(d)
    name = shlex.quote(container_name(app))
    spec = spec_hash(image_id, env)
    uid = USER.split(":")[0]
    # the key path inside the container is /data/...: the same file on the host is d/...
    key = generate_command(f"{d}/{ANUBIS_KEY_FILE.rsplit('/', 1)[1]}", kind="hex", length=64, owner=uid)
    policy = f"{qd}/{ANUBIS_POLICY_FILE.rsplit('/', 1)[1]}"
    return f"""\
set -eu
install -d -m 0750 -o {uid} -g {uid} {qd}
{key}
cat > {policy} <<'HOMELAB_ANUBIS_POLICY'
{POLICY}HOMELAB_ANUBIS_POLICY
cat > {qd}/env <<'HOMELAB_ANUBIS_ENV'
{render_env_file(env)}HOMELAB_ANUBIS_ENV
chmod 0644 {policy} {qd}/env
docker rm -f {name} >/dev/null 2>&1 || true
docker run -d --name {name} --restart unless-stopped --network host --user {USER} \\
  --label {ANUBIS_LABEL}={shlex.quote(app)} --label {SPEC_LABEL}={spec} \\
  -v {qd}:/data:ro --env-file {qd}/env {shlex.quote(image_id)} >/dev/null
for i in $(seq {HEALTH_WAIT * 5}); do
  if curl -sf -o /dev/null --max-time 2 http://127.0.0.1:{int(metrics_port)}/healthz; then
    echo "anubis {app}: healthy"; exit 0
  fi
  sleep 0.2
done
echo "anubis {app}: not healthy after {HEALTH_WAIT} s: $(docker logs --tail 5 {name} 2>&1 | tr '\\n' ' ')"
exit 1
"""


def render_remove_script(app: str) -> str:
    """Stop and remove the container; its directory (key, env) goes too: nothing in it is data."""
    return (f"docker rm -f {shlex.quote(container_name(app))} >/dev/null 2>&1 || true; "
            f"rm -rf {shlex.quote(app_dir(app))}")


def render_pull_script(pull_from: str, image: str) -> str:
    """Pull once by tag (the one time a tag is trusted), named as the configured image."""
    cmd = f"docker pull -q {shlex.quote(pull_from)} >/dev/null"
    if pull_from != image:
        cmd += f" && docker tag {shlex.quote(pull_from)} {shlex.quote(image)}"
    return cmd
