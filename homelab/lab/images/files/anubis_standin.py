#!/usr/bin/python3
"""STAND-IN for Anubis (ghcr.io/techarohq/anubis v1.27.0) — not Anubis.

Anubis is in no registry the homelab lab can reach, so the lab serves this under Anubis's image
name. It keeps the HTTP contract homelab relies on, read from Anubis's source (lib/anubis.go,
lib/http.go, lib/challenge/proofofwork, internal/headers.go, cmd/anubis/main.go):

- settings from the environment, as Anubis's flags: BIND (:8923), TARGET, METRICS_BIND (:9090),
  DIFFICULTY (4), ED25519_PRIVATE_KEY_HEX or ED25519_PRIVATE_KEY_HEX_FILE (32-byte seed, hex;
  unset = a random key per start), COOKIE_DOMAIN, COOKIE_PREFIX, COOKIE_SECURE (true),
  COOKIE_PARTITIONED (true), COOKIE_SAME_SITE (None), COOKIE_HTTP_ONLY (false),
  COOKIE_EXPIRATION_TIME (168h), REDIRECT_DOMAINS, JWT_RESTRICTION_HEADER (X-Real-IP),
  USE_REMOTE_ADDRESS (false), XFF_STRIP_PRIVATE (true), POLICY_FNAME (read, not evaluated);
- a client without a valid cookie gets the challenge page (HTML with the challenge JSON in
  <script id="anubis_challenge">: id, randomData, difficulty) and a verification cookie;
- GET /.within.website/x/cmd/anubis/api/pass-challenge?id=&response=&nonce=&redir=&elapsedTime=
  checks response == sha256(randomData + nonce) with DIFFICULTY leading zero hex digits, sets an
  EdDSA (ED25519) signed JWT cookie bound to the X-Real-Ip value, and redirects to redir;
- with a valid cookie the request is proxied to TARGET, X-Real-Ip kept (from X-Forwarded-For
  when empty), X-Forwarded-For extended, X-Anubis-Status: PASS added;
- GET /.within.website/x/cmd/anubis/api/check: 200 with a valid cookie, else 401;
- METRICS_BIND serves /healthz ("OK") and /metrics; `anubis --healthcheck` probes /healthz.

Not modelled: policy files (every client without a cookie is challenged, as a catch-all
CHALLENGE rule would), other challenge methods, static assets, Thoth, OpenGraph, DNSBL.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import http.client
import ipaddress
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

API = "/.within.website/x/cmd/anubis/api/"
VERSION = "v1.27.0-lab-standin"
SAME_SITE = {"default": 1, "lax": 2, "strict": 3, "none": 4}  # Go's http.SameSite values
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "t", "true", "yes", "on")


def go_duration(raw: str) -> float:
    """'168h', '30m', '1h30m', '90s' -> seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise SystemExit(f"anubis stand-in: bad duration {raw!r}")
    return sum(float(n) * units[u] for n, u in parts)


def parse_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Settings:
    def __init__(self) -> None:
        e = os.environ
        self.bind = e.get("BIND", ":8923")
        self.metrics_bind = e.get("METRICS_BIND", ":9090")
        self.target = e.get("TARGET", "http://localhost:3923")
        self.difficulty = int(e.get("DIFFICULTY", "4"))
        self.cookie_domain = e.get("COOKIE_DOMAIN", "")
        prefix = e.get("COOKIE_PREFIX", "techaro.lol-anubis")
        self.cookie_secure = env_bool("COOKIE_SECURE", True)
        self.cookie_partitioned = env_bool("COOKIE_PARTITIONED", True)
        self.cookie_http_only = env_bool("COOKIE_HTTP_ONLY", False)
        self.cookie_dynamic_domain = env_bool("COOKIE_DYNAMIC_DOMAIN", False)
        self.same_site = e.get("COOKIE_SAME_SITE", "None")
        self.expiration = go_duration(e.get("COOKIE_EXPIRATION_TIME", "168h"))
        self.redirect_domains = [d.strip() for d in e.get("REDIRECT_DOMAINS", "").split(",") if d.strip()]
        self.restriction_header = e.get("JWT_RESTRICTION_HEADER", "X-Real-IP")
        self.use_remote_address = env_bool("USE_REMOTE_ADDRESS", False)
        self.xff_strip_private = env_bool("XFF_STRIP_PRIVATE", True)
        self.policy = e.get("POLICY_FNAME", "")
        # Anubis: the cookie name carries a hash of the cookie settings (v1.27.0, lib/http.go)
        same_site_num = SAME_SITE.get(self.same_site.lower(), 4)
        suffix = hashlib.sha256(
            f"{str(self.cookie_http_only).lower()}|{str(self.cookie_secure).lower()}|"
            f"{str(self.cookie_partitioned).lower()}|{same_site_num}|{self.cookie_domain}|"
            f"{str(self.cookie_dynamic_domain).lower()}|".encode()).hexdigest()[:8]
        self.auth_cookie = f"{prefix}-auth-{suffix}"
        self.test_cookie = f"{prefix}-cookie-verification-{suffix}"
        self.key = self._key()
        self.public_key = self.key.public_key()
        # the only "policy rule" there is; its hash goes into the JWT as Anubis's does
        self.rule_hash = hashlib.sha256(f"catch-all|CHALLENGE|fast|{self.difficulty}".encode()).hexdigest()

    def _key(self) -> Ed25519PrivateKey:
        raw = os.environ.get("ED25519_PRIVATE_KEY_HEX", "").strip()
        path = os.environ.get("ED25519_PRIVATE_KEY_HEX_FILE", "").strip()
        if raw and path:
            raise SystemExit("anubis stand-in: set ED25519_PRIVATE_KEY_HEX or ED25519_PRIVATE_KEY_HEX_FILE, not both")
        if path:
            with open(path, encoding="ascii") as f:
                raw = f.read().strip()
        if not raw:
            log("no ED25519_PRIVATE_KEY_HEX(_FILE) set: a random key, cookies end with this process")
            return Ed25519PrivateKey.generate()
        seed = bytes.fromhex(raw)
        if len(seed) != 32:
            raise SystemExit("anubis stand-in: the ed25519 key must be 32 bytes (64 hex digits)")
        return Ed25519PrivateKey.from_private_bytes(seed)


def log(msg: str, **fields: object) -> None:
    rest = " ".join(f"{k}={json.dumps(v)}" for k, v in fields.items())
    print(f"time={time.strftime('%Y-%m-%dT%H:%M:%S')} level=INFO source=anubis-standin msg={json.dumps(msg)} {rest}",
          file=sys.stderr, flush=True)


class State:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.lock = threading.Lock()
        self.challenges: dict[str, dict[str, object]] = {}
        self.counters = {"issued": 0, "validated": 0, "failed": 0, "proxied": 0}
        self.ready = False

    def count(self, name: str) -> None:
        with self.lock:
            self.counters[name] += 1

    def issue(self, headers: dict[str, str]) -> dict[str, object]:
        chall = {
            "issuedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "metadata": {"User-Agent": headers.get("user-agent", ""), "X-Real-Ip": headers.get("x-real-ip", "")},
            "id": str(uuid.uuid4()), "method": "fast", "randomData": secrets.token_hex(64),
            "policyRuleHash": self.s.rule_hash, "difficulty": self.s.difficulty, "spent": False,
        }
        with self.lock:
            now = time.time()
            for cid in [c for c, v in self.challenges.items() if now - float(v["_t"]) > 1800]:  # type: ignore[arg-type]
                del self.challenges[cid]
            self.challenges[str(chall["id"])] = {**chall, "_t": now}
            self.counters["issued"] += 1
        return chall

    def sign(self, claims: dict[str, object]) -> str:
        now = int(time.time())
        claims = {**claims, "iat": now, "nbf": now - 60, "exp": now + int(self.s.expiration)}
        head = b64url(json.dumps({"alg": "EdDSA", "typ": "JWT"}, separators=(",", ":")).encode())
        body = b64url(json.dumps(claims, separators=(",", ":")).encode())
        sig = self.s.key.sign(f"{head}.{body}".encode())
        return f"{head}.{body}.{b64url(sig)}"

    def verify(self, token: str, restriction: str) -> bool:
        try:
            head, body, sig = token.split(".")
            if json.loads(unb64url(head)).get("alg") != "EdDSA":
                return False
            self.s.public_key.verify(unb64url(sig), f"{head}.{body}".encode())
            claims = json.loads(unb64url(body))
        except (ValueError, InvalidSignature, json.JSONDecodeError):
            return False
        now = time.time()
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now or claims.get("nbf", 0) > now:
            return False
        if claims.get("policyRule") != self.s.rule_hash:
            return False
        if self.s.restriction_header and claims.get("restriction") != hashlib.sha256(restriction.encode()).hexdigest():
            return False
        return True


# what Anubis strips from X-Forwarded-For: Go's IsPrivate (RFC 1918, fc00::/7), loopback,
# link-local and CGNAT (internal/headers.go XFFComputePreferences)
STRIPPED = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
                                              "127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10",
                                              "100.64.0.0/10")]


def first_public(xff: str, strip_private: bool) -> str:
    for part in (p.strip() for p in xff.split(",")):
        try:
            addr = ipaddress.ip_address(part)
        except ValueError:
            continue
        if not strip_private or not any(addr in net for net in STRIPPED):
            return part
    return ""


def challenge_page(chall: dict[str, object], difficulty: int) -> bytes:
    data = json.dumps({"rules": {"algorithm": "fast", "difficulty": difficulty, "report_as": difficulty},
                       "challenge": chall}).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Making sure you&#39;re not a bot!</title>
<script id="anubis_version" type="application/json">{json.dumps(VERSION)}</script>
<script id="anubis_challenge" type="application/json">{data}</script>
<script id="anubis_base_prefix" type="application/json">""</script>
<script id="anubis_public_url" type="application/json">""</script>
</head><body><main><h1 id="title">Making sure you&#39;re not a bot!</h1>
<p id="status">Loading... (homelab lab stand-in for Anubis: compute sha256(randomData + nonce) with
{difficulty} leading zero hex digits, then call {API}pass-challenge)</p></main>
<script>{SOLVER_JS}</script></body></html>
""".encode()


# What Anubis's page script does (web/js/main.ts), so a real browser passes too: read the
# challenge, find the nonce, go to pass-challenge with id/response/nonce/redir/elapsedTime.
# SHA-256 in plain JS: crypto.subtle exists only in secure contexts (the lab serves plain HTTP).
SOLVER_JS = """
(function () {
  var K = [], i;
  function frac(x) { return ((x - Math.floor(x)) * 4294967296) | 0; }
  for (var n = 2, c = 0; c < 64; n++) {
    var p = true; for (i = 2; i * i <= n; i++) if (n % i === 0) { p = false; break; }
    if (p) { K[c++] = frac(Math.cbrt(n)); }
  }
  function sha256hex(str) {
    var bytes = unescape(encodeURIComponent(str)), l = bytes.length, words = [], j;
    for (j = 0; j < l; j++) words[j >> 2] |= bytes.charCodeAt(j) << (24 - (j % 4) * 8);
    words[l >> 2] |= 0x80 << (24 - (l % 4) * 8);
    words[(((l + 8) >> 6) << 4) + 15] = l * 8;
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var W = [];
    for (j = 0; j < words.length; j += 16) {
      var a = H[0], b = H[1], c2 = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (var t = 0; t < 64; t++) {
        if (t < 16) W[t] = words[j + t] | 0; else {
          var x = W[t - 15], y = W[t - 2];
          W[t] = (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
                 (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) + W[t - 7] + W[t - 16] | 0;
        }
        var t1 = h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
                 ((e & f) ^ (~e & g)) + K[t] + W[t] | 0;
        var t2 = (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
                 ((a & b) ^ (a & c2) ^ (b & c2)) | 0;
        h = g; g = f; f = e; e = d + t1 | 0; d = c2; c2 = b; b = a; a = t1 + t2 | 0;
      }
      H = [H[0] + a | 0, H[1] + b | 0, H[2] + c2 | 0, H[3] + d | 0, H[4] + e | 0, H[5] + f | 0, H[6] + g | 0, H[7] + h | 0];
    }
    var out = "";
    for (j = 0; j < 8; j++) out += ("00000000" + (H[j] >>> 0).toString(16)).slice(-8);
    return out;
  }
  if (typeof document === "undefined") { globalThis.anubisStandinSha256 = sha256hex; return; }
  var data = JSON.parse(document.getElementById("anubis_challenge").textContent);
  var ch = data.challenge, want = "0".repeat(ch.difficulty), t0 = Date.now(), nonce = 0, hash;
  while (true) { hash = sha256hex(ch.randomData + nonce); if (hash.slice(0, ch.difficulty) === want) break; nonce++; }
  var q = new URLSearchParams({id: ch.id, response: hash, nonce: String(nonce),
                               redir: location.pathname + location.search, elapsedTime: String(Date.now() - t0)});
  location.replace("/.within.website/x/cmd/anubis/api/pass-challenge?" + q.toString());
})();
"""


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    s = state.s

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "anubis-standin"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
            log("request", client=self.client_address[0], line=format % args)

        # ---- helpers ----
        def _headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.headers.items()}

        def _real_ip(self) -> str:
            if s.use_remote_address:
                return self.client_address[0]
            ip = self.headers.get("X-Real-Ip", "")
            if not ip and self.headers.get("X-Forwarded-For"):
                ip = first_public(self.headers["X-Forwarded-For"], s.xff_strip_private)
            return ip

        def _cookies(self) -> dict[str, str]:
            out: dict[str, str] = {}
            for part in self.headers.get("Cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name:
                    out[name] = value
            return out

        def _cookie(self, name: str, value: str, max_age: float) -> str:
            same_site = s.same_site
            if same_site.lower() == "none" and not s.cookie_secure:
                same_site = "Lax"  # as Anubis: SameSite=None needs Secure
            expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + max_age))
            parts = [f"{name}={value}", "Path=/", f"Expires={expires}"]
            if s.cookie_domain:
                parts.append(f"Domain={s.cookie_domain}")
            if s.cookie_http_only:
                parts.append("HttpOnly")
            if s.cookie_secure:
                parts.append("Secure")
            if same_site.lower() != "default":
                parts.append(f"SameSite={same_site.capitalize()}")
            if s.cookie_partitioned:
                parts.append("Partitioned")
            return "; ".join(parts)

        def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8",
                  cookies: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for c in cookies:
                self.send_header("Set-Cookie", c)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, msg: str) -> None:
            self._send(status, f"<!doctype html><title>Oh noes!</title><p>{html.escape(msg)}</p>\n".encode())

        def _authorized(self) -> bool:
            token = self._cookies().get(s.auth_cookie, "")
            return bool(token) and state.verify(token, self.headers.get(s.restriction_header, ""))

        # ---- routes ----
        def do_GET(self) -> None:
            self._prepare()
            path = urllib.parse.urlsplit(self.path).path
            if path == API + "pass-challenge":
                return self._pass_challenge()
            if path == API + "check":
                return self._send(200, b"OK", "text/plain") if self._authorized() else self._send(401, b"Unauthorized", "text/plain")
            if self._authorized():
                return self._proxy()
            chall = state.issue(self._headers())
            log("new challenge issued", challenge=chall["id"], client=self.headers.get("X-Real-Ip", ""))
            self._send(200, challenge_page(chall, s.difficulty), cookies=(self._cookie(s.test_cookie, str(chall["id"]), 1800),))

        do_HEAD = do_GET

        def do_POST(self) -> None:
            self._prepare()
            if urllib.parse.urlsplit(self.path).path == API + "pass-challenge":
                return self._pass_challenge()
            if self._authorized():
                return self._proxy()
            self._error(401, "authorization required")

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

        def _prepare(self) -> None:
            ip = self._real_ip()
            if ip:
                del self.headers["X-Real-Ip"]
                self.headers["X-Real-Ip"] = ip

        def _pass_challenge(self) -> None:
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
            redir = q.get("redir", "")
            parsed = urllib.parse.urlsplit(redir)
            if not redir or parsed.scheme not in ("", "http", "https"):
                return self._error(400, "Invalid redirect")
            if s.test_cookie not in self._cookies():
                return self._error(500, "Your browser is configured to disable cookies.")
            host = parsed.hostname or ""
            if host and s.redirect_domains and not any(
                    host == d or (d.startswith("*.") and host.endswith(d[1:])) for d in s.redirect_domains):
                return self._error(500, "Redirect domain not allowed")
            with state.lock:
                chall = state.challenges.get(q.get("id", ""))
                if chall and chall["spent"]:
                    state.counters["failed"] += 1
                    return self._error(500, "Internal server error: double_spend")
            if not chall:
                return self._error(500, "Internal server error: fast")
            nonce, response = q.get("nonce", ""), q.get("response", "")
            try:
                int(nonce)
                float(q.get("elapsedTime", ""))
            except ValueError:
                return self._error(500, "invalid response")
            want = hashlib.sha256(f"{chall['randomData']}{nonce}".encode()).hexdigest()
            if not hmac.compare_digest(response, want) or not response.startswith("0" * int(str(chall["difficulty"]))):
                state.count("failed")
                log("challenge failed", challenge=chall["id"])
                return self._send(403, b"<!doctype html><p>invalid response</p>\n",
                                  cookies=(self._cookie(s.auth_cookie, "", -60),))
            restriction = self.headers.get(s.restriction_header, "")
            if s.restriction_header and not restriction:
                log("JWTRestrictionHeader is set in config but not found in request")
                return self._error(500, "failed to sign JWT")
            claims: dict[str, object] = {"challenge": chall["id"], "method": "fast", "policyRule": s.rule_hash,
                                         "action": "CHALLENGE"}
            if s.restriction_header:
                claims["restriction"] = hashlib.sha256(restriction.encode()).hexdigest()
            token = state.sign(claims)
            with state.lock:
                chall["spent"] = True
                state.counters["validated"] += 1
            log("challenge passed", challenge=chall["id"], client=restriction)
            self._send(302, b"", cookies=(self._cookie(s.auth_cookie, token, s.expiration),), extra={"Location": redir})

        def _proxy(self) -> None:
            target = urllib.parse.urlsplit(s.target)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            xff = self.headers.get("X-Forwarded-For", "")
            headers["X-Forwarded-For"] = f"{xff}, {self.client_address[0]}" if xff else self.client_address[0]
            headers.update({"X-Anubis-Rule": "catch-all", "X-Anubis-Action": "CHALLENGE", "X-Anubis-Status": "PASS"})
            cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
            conn = cls(target.hostname or "localhost", target.port or (443 if target.scheme == "https" else 80), timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError as exc:
                log("upstream unreachable", target=s.target, err=str(exc))
                return self._error(502, "bad gateway")
            finally:
                conn.close()
            state.count("proxied")
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def make_metrics_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:
            if self.path == "/healthz":
                status, body = (200, b"OK") if state.ready else (500, b"NOT OK")
            elif self.path == "/metrics":
                with state.lock:
                    c = dict(state.counters)
                status = 200
                body = (f"anubis_challenges_issued {c['issued']}\nanubis_challenges_validated {c['validated']}\n"
                        f"anubis_failed_validations {c['failed']}\nanubis_standin_proxied {c['proxied']}\n").encode()
            else:
                status, body = 404, b"not found"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Metrics


def healthcheck() -> int:
    """`anubis --healthcheck`, as Anubis does it: http://localhost + METRICS_BIND + /healthz."""
    url = urllib.parse.urlsplit("http://localhost" + os.environ.get("METRICS_BIND", ":9090") + "/healthz")
    try:
        conn = http.client.HTTPConnection(url.hostname or "localhost", url.port or 80, timeout=5)
        conn.request("GET", url.path)
        return 0 if conn.getresponse().status == 200 else 1
    except (OSError, ValueError):
        return 1


def main() -> int:
    if "--healthcheck" in sys.argv[1:]:
        return healthcheck()
    if "--version" in sys.argv[1:]:
        print(VERSION)
        return 0
    settings = Settings()
    if settings.policy:
        log("POLICY_FNAME is read but not evaluated by the stand-in", policy=settings.policy)
    state = State(settings)
    app = ThreadingHTTPServer(parse_bind(settings.bind), make_handler(state))
    metrics = ThreadingHTTPServer(parse_bind(settings.metrics_bind), make_metrics_handler(state))
    threading.Thread(target=metrics.serve_forever, daemon=True).start()
    # PID 1 in a container: without a handler SIGTERM (docker stop) would be ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state.ready = True
    log("listening", bind=settings.bind, metrics=settings.metrics_bind, target=settings.target,
        difficulty=settings.difficulty, standin=True)
    try:
        app.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
