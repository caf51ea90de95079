"""The lab images on a real lab host: pulled from the lab registry by docker, run, and answering.

One host is enough (h1, docker from the lab's apt repo). The images are built once into the
lab cache (minutes the first time, seconds after) by `Lab.ensure_images()`; every test pulls
through `labrepo:5000` over TLS with the lab CA, exactly as a host with `images.mirror` would.
Run alone with: LAB_HOSTS=1 pytest -m lab tests/lab/test_lab_images_on_hosts.py
"""
from __future__ import annotations

import json
import secrets
import shlex
import time

import pytest

from homelab.lab import Lab
from homelab.lab.images import oci
from homelab.lab.images.build import ImageCache
from homelab.lab.images.catalog import CATALOG

pytestmark = pytest.mark.lab
HOST = "h1"


def sh(lab: Lab, cmd: str, timeout: float = 300, check: bool = True) -> str:
    r = lab.run(HOST, cmd, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{cmd!r} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout.strip()


def wait_for(lab: Lab, cmd: str, timeout: float = 60, what: str = "") -> str:
    """Repeat `cmd` on the host until it succeeds; fail with its last output and the logs."""
    deadline = time.monotonic() + timeout
    while True:
        r = lab.run(HOST, cmd, timeout=30)
        if r.returncode == 0:
            return r.stdout.strip()
        if time.monotonic() > deadline:
            logs = lab.run(HOST, "for c in $(docker ps -aq); do docker logs --tail 20 $c 2>&1; done").stdout
            pytest.fail(f"{what or cmd}: not ready after {timeout:.0f}s: {r.stdout[-500:]} {r.stderr[-500:]}\n{logs}")
        time.sleep(0.5)


def uids(lab: Lab, container: str, match: str) -> set[str]:
    """The uids of a container's processes whose command line contains `match`."""
    out = sh(lab, f"docker top {container} -o pid,uid,args")
    return {line.split()[1] for line in out.splitlines()[1:] if match in line}


@pytest.fixture(scope="module")
def refs(lab: Lab) -> dict[str, str]:
    """Images built and pushed; docker installed and running on the host; all images pulled."""
    t = time.monotonic()
    refs = lab.ensure_images()
    built_s = time.monotonic() - t
    sh(lab, "systemctl is-active docker >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -qq docker.io postgresql-client valkey-tools >/dev/null)", timeout=600)
    sh(lab, "systemctl is-active docker && docker rm -f $(docker ps -aq) >/dev/null 2>&1; true")
    t = time.monotonic()
    for ref in refs.values():
        sh(lab, f"docker pull -q {shlex.quote(ref)}", timeout=600)
    print(f"\nlab images: ensure_images {built_s:.1f}s, pull of {len(refs)} images {time.monotonic() - t:.1f}s")
    return refs


def test_images_come_from_the_lab_registry_with_their_built_digest(lab: Lab, refs: dict[str, str]) -> None:
    ic = ImageCache(lab.config.cache)
    for key, ref in refs.items():
        built = ic.built(key)
        assert built is not None
        info = json.loads(sh(lab, f"docker image inspect {shlex.quote(ref)}"))[0]
        repo = ref.rsplit(":", 1)[0]
        assert f"{repo}@{built.manifest}" in info["RepoDigests"], (key, info["RepoDigests"])
        labels = info["Config"]["Labels"]
        assert labels["homelab.lab.upstream"] == CATALOG[key].ref
        assert labels["homelab.lab.kind"] == CATALOG[key].kind
    # every alias tag points at the same manifest
    client = lab.registry_client()
    pg = CATALOG["postgres"]
    digests = {client.manifest_digest("library/postgres", tag, oci.MANIFEST_TYPE) for tag in pg.tags}
    assert digests == {ic.built("postgres").manifest}  # type: ignore[union-attr]


def test_syncthing_answers_its_health_endpoint(lab: Lab, refs: dict[str, str]) -> None:
    sh(lab, f"docker run -d --name st -p 127.0.0.1:8384:8384 -v /srv/st:/var/syncthing {refs['syncthing']}")
    try:
        out = wait_for(lab, "curl -fsS http://127.0.0.1:8384/rest/noauth/health", what="syncthing health")
        assert json.loads(out) == {"status": "OK"}
        # the upstream contract: runs as PUID 1000, its config under the data volume
        assert uids(lab, "st", "syncthing") == {"1000"}
        sh(lab, "docker exec st ls /var/syncthing/config/config.xml")
        assert sh(lab, "stat -c %u /srv/st") == "1000"
        wait_for(lab, "test \"$(docker inspect -f '{{.State.Health.Status}}' st)\" = healthy", timeout=90,
                 what="syncthing docker healthcheck")
    finally:
        sh(lab, "docker rm -f st", check=False)


def test_radicale_kozea_runs_the_recipes_command_line(lab: Lab, refs: dict[str, str]) -> None:
    # the shipped recipe's command and user (recipes/radicale.yaml), read-only root as there
    sh(lab, "install -d -o 1000 -g 1000 /srv/radk /srv/radk-etc && touch /srv/radk-etc/users")
    sh(lab, f"docker run -d --name radk --read-only --user 1000:1000 -p 127.0.0.1:5233:5232 "
            f"-v /srv/radk:/var/lib/radicale -v /srv/radk-etc:/etc/radicale {refs['radicale']} "
            "--hosts 0.0.0.0:5232 --storage-filesystem-folder /var/lib/radicale/collections --auth-type none")
    try:
        wait_for(lab, "docker exec radk curl --fail --silent -o /dev/null http://localhost:5232/.web/",
                 what="radicale (kozea) health, the recipe's check")
        sh(lab, "curl -fsS -u bob:any -X MKCALENDAR http://127.0.0.1:5233/bob/cal/ -o /dev/null")
        assert sh(lab, "ls /srv/radk/collections/collection-root/bob") == "cal"
        assert uids(lab, "radk", "radicale") == {"1000"}
    finally:
        sh(lab, "docker rm -f radk", check=False)


def test_radicale_tomsquest_serves_and_stores_a_calendar(lab: Lab, refs: dict[str, str]) -> None:
    # a bind mount docker creates is root's: upstream's TAKE_FILE_OWNERSHIP hands it to radicale
    sh(lab, f"docker run -d --name rad -p 127.0.0.1:5232:5232 -v /srv/rad:/data -e TAKE_FILE_OWNERSHIP=true "
            f"{refs['radicale-tomsquest']}")
    try:
        wait_for(lab, "curl -fsS -o /dev/null http://127.0.0.1:5232/.web/", what="radicale web")
        # auth none (upstream config): any name logs in (owner_only rights); stored under /data/collections
        sh(lab, "curl -fsS -u alice:any -X MKCALENDAR http://127.0.0.1:5232/alice/cal/ -o /dev/null")
        event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//lab//test//EN\r\nBEGIN:VEVENT\r\nUID:e1\r\n"
                 "DTSTAMP:20261201T000000Z\r\nDTSTART:20261224T180000Z\r\nSUMMARY:lab\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
        assert lab.run(HOST, "cat > /tmp/e1.ics", input=event).returncode == 0
        # a sized body: Radicale's WSGI server takes no chunked uploads
        sh(lab, "curl -fsS -u alice:any -X PUT --data-binary @/tmp/e1.ics -H 'Content-Type: text/calendar' "
                "http://127.0.0.1:5232/alice/cal/e1.ics")
        assert sh(lab, "ls /srv/rad/collections/collection-root/alice/cal") == "e1.ics"
        assert "SUMMARY:lab" in sh(lab, "curl -fsS -u alice:any http://127.0.0.1:5232/alice/cal/e1.ics")
        assert uids(lab, "rad", "tini") == {"0"} and uids(lab, "rad", "python") == {"2999"}
    finally:
        sh(lab, "docker rm -f rad", check=False)


def put_secret_file(lab: Lab, path: str, text: str) -> None:
    """A 0600 file on the host, written from stdin: generated passwords stay out of every argv."""
    r = lab.run(HOST, f"umask 077 && cat > {shlex.quote(path)}", input=text)
    assert r.returncode == 0, r.stderr


def test_postgres_initialises_accepts_the_password_and_dumps(lab: Lab, refs: dict[str, str]) -> None:
    password = secrets.token_hex(12)
    put_secret_file(lab, "/root/pg.env", f"POSTGRES_USER=app\nPOSTGRES_DB=appdb\nPOSTGRES_PASSWORD={password}\n")
    put_secret_file(lab, "/root/pgpass", f"127.0.0.1:5432:appdb:app:{password}\n")
    put_secret_file(lab, "/root/pgpass-wrong", "127.0.0.1:5432:appdb:app:wrong\n")
    sh(lab, f"docker run -d --name pg -p 127.0.0.1:5432:5432 -v /srv/pg:/var/lib/postgresql/data "
            f"--env-file /root/pg.env {refs['postgres']}")
    try:
        wait_for(lab, "docker exec pg pg_isready -U app -d appdb -h 127.0.0.1", what="pg_isready")
        wait_for(lab, "docker logs pg 2>&1 | grep -q 'init process complete'", what="init")
        # over TCP from outside the container: scram-sha-256 with POSTGRES_PASSWORD
        login = "PGPASSFILE=/root/pgpass psql -h 127.0.0.1 -U app -d appdb -w -tAc"
        sh(lab, f"{login} 'create table notes(t text); insert into notes values (42)'")
        assert sh(lab, f"{login} 'select t from notes'") == "42"
        wrong = lab.run(HOST, "PGPASSFILE=/root/pgpass-wrong psql -h 127.0.0.1 -U app -d appdb -w -tAc 'select 1'")
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
        dump = sh(lab, "docker exec pg pg_dump -U app appdb")
        assert "CREATE TABLE public.notes" in dump and "42" in dump
        assert sh(lab, "stat -c %u /srv/pg") == "999"
        assert password not in sh(lab, "docker logs pg 2>&1")
        # a restart finds the database and does not initialise again
        sh(lab, "docker restart pg")
        wait_for(lab, "docker exec pg pg_isready -U app -d appdb -h 127.0.0.1", what="pg_isready after restart")
        assert "Skipping initialization" in sh(lab, "docker logs pg 2>&1")
        assert sh(lab, f"{login} 'select t from notes'") == "42"
    finally:
        sh(lab, "docker rm -f pg", check=False)


def test_postgres_refuses_to_start_without_a_password(lab: Lab, refs: dict[str, str]) -> None:
    r = lab.run(HOST, f"docker run --rm {refs['postgres']}", timeout=120)
    assert r.returncode != 0 and "superuser password is not specified" in r.stderr + r.stdout


def test_valkey_answers_ping_from_outside_the_container(lab: Lab, refs: dict[str, str]) -> None:
    sh(lab, f"docker run -d --name vk -p 127.0.0.1:6379:6379 -v /srv/vk:/data {refs['valkey']}")
    try:
        # through docker's port mapping the client is not loopback: protected mode must be off
        assert wait_for(lab, "valkey-cli -h 127.0.0.1 ping", what="valkey ping") == "PONG"
        sh(lab, "valkey-cli -h 127.0.0.1 set k v >/dev/null && valkey-cli -h 127.0.0.1 save >/dev/null")
        assert sh(lab, "ls /srv/vk") == "dump.rdb" and sh(lab, "stat -c %u /srv/vk/dump.rdb") == "999"
    finally:
        sh(lab, "docker rm -f vk", check=False)


def test_miniflux_runs_against_postgres(lab: Lab, refs: dict[str, str]) -> None:
    db_pw, admin_pw = secrets.token_hex(12), secrets.token_hex(12)
    put_secret_file(lab, "/root/mfdb.env", f"POSTGRES_USER=miniflux\nPOSTGRES_PASSWORD={db_pw}\n")
    put_secret_file(lab, "/root/mf.env", f"DATABASE_URL=postgres://miniflux:{db_pw}@mfdb/miniflux?sslmode=disable\n"
                    f"RUN_MIGRATIONS=1\nCREATE_ADMIN=1\nADMIN_USERNAME=admin\nADMIN_PASSWORD={admin_pw}\n")
    put_secret_file(lab, "/root/mf.curl", f'user = "admin:{admin_pw}"\n')
    sh(lab, "docker network create mf >/dev/null")
    try:
        sh(lab, f"docker run -d --name mfdb --network mf --env-file /root/mfdb.env {refs['postgres']}")
        wait_for(lab, "docker exec mfdb pg_isready -U miniflux -h 127.0.0.1", what="miniflux db")
        sh(lab, f"docker run -d --name mf --network mf -p 127.0.0.1:8080:8080 --env-file /root/mf.env "
                f"{refs['miniflux']}")
        assert wait_for(lab, "curl -fsS http://127.0.0.1:8080/healthcheck", what="miniflux healthcheck") == "OK"
        me = json.loads(sh(lab, "curl -fsS -K /root/mf.curl http://127.0.0.1:8080/v1/me"))
        assert me["username"] == "admin" and me["is_admin"] is True
        assert uids(lab, "mf", "miniflux") == {"65534"}  # USER nobody, as upstream
    finally:
        sh(lab, "docker rm -f mf mfdb >/dev/null; docker network rm mf", check=False)


# our own client (the PyPI anubis-solver 0.1.1 speaks an older Anubis format: see the notes)
SOLVER = r'''
import hashlib, http.client, json, re, sys
port, real_ip = int(sys.argv[1]), sys.argv[2]
ua = "Mozilla/5.0 (X11; Linux x86_64) homelab-lab-test"
def get(path, cookie=""):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"User-Agent": ua, "X-Real-Ip": real_ip, "Cookie": cookie})
    r = c.getresponse()
    return r.status, r.getheader("Location"), [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie"], r.read().decode()
status, _, cookies, page = get("/hello")
assert status == 200 and "echo:" not in page, page
data = json.loads(re.search(r'<script id="anubis_challenge" type="application/json">(.*?)</script>', page).group(1))
ch = data["challenge"]
nonce = 0
while not hashlib.sha256(f"{ch['randomData']}{nonce}".encode()).hexdigest().startswith("0" * ch["difficulty"]):
    nonce += 1
h = hashlib.sha256(f"{ch['randomData']}{nonce}".encode()).hexdigest()
status, loc, auth, _ = get(f"/.within.website/x/cmd/anubis/api/pass-challenge?id={ch['id']}&response={h}&nonce={nonce}&elapsedTime=5&redir=%2Fhello", cookies[0])
assert status == 302 and loc == "/hello", (status, loc)
status, _, _, page = get("/hello", auth[0])
print(json.dumps({"status": status, "page": page, "difficulty": ch["difficulty"]}))
'''
ECHO = ("import http.server as h\nclass E(h.BaseHTTPRequestHandler):\n def do_GET(s):\n"
        "  b=('echo: '+str(s.headers.get('X-Real-Ip'))+' '+str(s.headers.get('X-Anubis-Status'))).encode()\n"
        "  s.send_response(200); s.send_header('Content-Length',str(len(b))); s.end_headers(); s.wfile.write(b)\n"
        "h.HTTPServer(('0.0.0.0',8000),E).serve_forever()\n")


def test_anubis_standin_challenges_then_passes_a_solved_client(lab: Lab, refs: dict[str, str]) -> None:
    seed = secrets.token_hex(32)
    # the key reaches the host on stdin, never in an argument
    lab.run(HOST, "docker network create an >/dev/null; install -d -m 0755 /srv/anubis; umask 077; "
                  "cat > /srv/anubis/key.hex; chown 1000 /srv/anubis/key.hex", input=seed)
    try:
        # the app behind it: an echo of what reaches it (python from the Anubis image itself)
        sh(lab, f"docker run -d --name app --network an --entrypoint python3 {refs['anubis']} -c {shlex.quote(ECHO)}")
        env = ("-e TARGET=http://app:8000 -e DIFFICULTY=3 -e COOKIE_SECURE=false -e REDIRECT_DOMAINS=127.0.0.1 "
               "-e ED25519_PRIVATE_KEY_HEX_FILE=/keys/key.hex")
        sh(lab, f"docker run -d --name anubis --network an -p 127.0.0.1:8923:8923 -p 127.0.0.1:9090:9090 "
                f"-v /srv/anubis:/keys:ro {env} {refs['anubis']}")
        assert wait_for(lab, "curl -fsS http://127.0.0.1:9090/healthz", what="anubis /healthz") == "OK"
        r = lab.run(HOST, "cat > /tmp/solve.py", input=SOLVER)
        assert r.returncode == 0
        out = json.loads(sh(lab, "python3 /tmp/solve.py 8923 192.0.2.50"))
        assert out == {"status": 200, "page": "echo: 192.0.2.50 PASS", "difficulty": 3}
        assert sh(lab, "docker exec anubis /usr/local/bin/anubis --healthcheck; echo $?") == "0"
    finally:
        sh(lab, "docker rm -f anubis app >/dev/null; docker network rm an", check=False)
