"""Pebble (Let's Encrypt's test ACME server, Debian package `pebble`) on a lab host.

Real ACME in the lab: Caddy on another host orders a certificate from this Pebble with the
http-01 or tls-alpn-01 challenge, and Pebble really connects back to validate it
(PEBBLE_VA_ALWAYS_VALID is never set: it would skip exactly what we want to prove).

- Debian's package ships only the binaries, no config and no certificates, so the helper
  makes a throwaway CA with openssl for Pebble's own HTTPS listener. Caddy must trust that
  CA for the ACME directory (`acme_ca_root`); it is not the CA that signs issued certificates.
- Pebble validates on ports 5002/5001 by default (for unprivileged tests); here 80/443,
  where Caddy answers challenges.
- Pebble resolves the names it validates with Go's resolver, which reads /etc/hosts first:
  the helper writes each name's lab address there. No DNS server needed.
- The root that signs issued certificates is made fresh at every start; clients fetch it
  from the management API, `/roots/0` on :15000 (served with the listener's certificate).
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

CONF_DIR = "/etc/pebble"
UNIT = "homelab-pebble"
ACME_PORT = 14000
MANAGEMENT_PORT = 15000
MARK = "# homelab-pebble"  # tags the /etc/hosts lines the helper owns


@dataclass(frozen=True)
class Pebble:
    host: str
    address: str
    listener_ca: str  # PEM that signs Pebble's own HTTPS listener (give Caddy this as acme_ca_root)

    @property
    def directory(self) -> str:
        return f"https://{self.address}:{ACME_PORT}/dir"

    @property
    def roots_url(self) -> str:
        return f"https://{self.address}:{MANAGEMENT_PORT}/roots/0"


def render_pebble_config(http_port: int = 80, tls_port: int = 443) -> str:
    return json.dumps({"pebble": {
        "listenAddress": f"0.0.0.0:{ACME_PORT}",
        "managementListenAddress": f"0.0.0.0:{MANAGEMENT_PORT}",
        "certificate": f"{CONF_DIR}/listener.pem", "privateKey": f"{CONF_DIR}/listener.key",
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }}, indent=2) + "\n"


def render_setup_script(address: str, names: Mapping[str, str]) -> str:
    """Listener CA + certificate, config, /etc/hosts entries, and Pebble as a transient unit."""
    conf = render_pebble_config()
    hosts = "".join(f"{ip} {name} {MARK}\n" for name, ip in sorted(names.items()))
    d = CONF_DIR
    return f"""\
set -eu
mkdir -p {d}
cd {d}
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=homelab-lab-pebble-listener-ca \\
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=pebble -keyout listener.key \\
    -out listener.csr 2>/dev/null
  printf 'subjectAltName=IP:{address},DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > ext.cnf
  openssl x509 -req -in listener.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile ext.cnf \\
    -out listener.pem 2>/dev/null
fi
cat > config.json <<'HOMELAB_PEBBLE_CONF'
{conf}HOMELAB_PEBBLE_CONF
sed -i '/{MARK}$/d' /etc/hosts
cat >> /etc/hosts <<'HOMELAB_PEBBLE_HOSTS'
{hosts}HOMELAB_PEBBLE_HOSTS
systemctl stop {UNIT} 2>/dev/null || true
systemctl reset-failed {UNIT} 2>/dev/null || true
systemd-run --unit={UNIT} -E PEBBLE_VA_NOSLEEP=1 pebble -config {d}/config.json -strict=false >/dev/null
for i in $(seq 50); do
  curl -sf --cacert ca.pem https://{address}:{ACME_PORT}/dir >/dev/null && break
  sleep 0.2
done
curl -sf --cacert ca.pem https://{address}:{ACME_PORT}/dir >/dev/null
cat ca.pem
"""


def start_pebble(lab: Any, host: str, names: Mapping[str, str]) -> Pebble:
    """Run Pebble on `host`; `names`: the hostnames it will validate -> their lab addresses."""
    address = str(lab.address(host))
    r = lab.run(host, "bash -s", input=render_setup_script(address, names), timeout=120)
    if r.returncode != 0 or "BEGIN CERTIFICATE" not in r.stdout:
        from homelab.lab.config import LabError

        raise LabError(f"{host}: pebble did not start ({r.returncode}): {r.stderr[-1500:]}")
    return Pebble(host, address, r.stdout[r.stdout.index("-----BEGIN"):])


def fetch_root_command(pebble: Pebble, listener_ca_path: str, out: str) -> str:
    """Shell command (on any lab host) that saves the root signing issued certificates."""
    return (f"curl -sf --cacert {shlex.quote(listener_ca_path)} {shlex.quote(pebble.roots_url)} "
            f"-o {shlex.quote(out)} && grep -q 'BEGIN CERTIFICATE' {shlex.quote(out)}")
