#!/usr/bin/python3
"""STAND-IN for traefik/whoami (docker.io/traefik/whoami v1.11.0) — not whoami.

whoami is a Go binary published only on Docker Hub, which the lab cannot reach, and Debian has
no package of it, so the lab serves this under whoami's image name. It keeps the parts of
whoami's HTTP contract (its README: paths and flags) that homelab's tests rely on:

- `--port` / WHOAMI_PORT_NUMBER (80) and `--name` / WHOAMI_NAME;
- GET / : plain text, `Hostname: <container hostname>`, `Name: <name>` when set, one `IP:` line
  per address, `RemoteAddr: ip:port`, then the request line and its headers;
- GET /api : the same as JSON (hostname, ip, headers, url, host, method, name, remoteAddr);
- /health : GET/HEAD answer with the current status (200 at start); POST with a number as the
  body sets it (so a test can make one copy unhealthy without stopping it);
- /bench : `1`.

Not modelled: TLS flags, /echo (websocket), /data, `?wait=`, `?env=`.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_health = {"status": 200}
_lock = threading.Lock()


def addresses() -> list[str]:
    """This container's addresses: loopback and every address its hostname resolves to."""
    found = ["127.0.0.1"]
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            ip = str(info[4][0])
            if ip not in found:
                found.append(ip)
    except OSError:
        pass
    return found


class Handler(BaseHTTPRequestHandler):
    server_version = "whoami-standin"
    name = ""

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _info(self) -> dict[str, object]:
        return {"hostname": socket.gethostname(), "ip": addresses(), "headers": {k: self.headers.get_all(k)
                for k in self.headers.keys()}, "url": self.path, "host": self.headers.get("Host", ""),
                "method": self.command, "name": self.name,
                "remoteAddr": f"{self.client_address[0]}:{self.client_address[1]}"}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path == "/health":
            with _lock:
                status = _health["status"]
            self._send(status, b"")
        elif path == "/bench":
            self._send(200, b"1")
        elif path == "/api":
            self._send(200, json.dumps(self._info()).encode(), "application/json")
        else:
            lines = [f"Hostname: {socket.gethostname()}"]
            if self.name:
                lines.append(f"Name: {self.name}")
            lines += [f"IP: {ip}" for ip in addresses()]
            lines.append(f"RemoteAddr: {self.client_address[0]}:{self.client_address[1]}")
            lines.append(f"{self.command} {self.path} {self.request_version}")
            lines += [f"{k}: {v}" for k, v in self.headers.items()]
            self._send(200, ("\n".join(lines) + "\n").encode())

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] != "/health":
            self.do_GET()
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            status = int(self.rfile.read(length).decode().strip())
        except ValueError:
            self._send(400, b"status code should be a number\n")
            return
        with _lock:
            _health["status"] = status
        self._send(200, b"")

    def log_message(self, format: str, *args: object) -> None:  # quiet, like whoami (it logs nothing by default)
        return


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="whoami")
    p.add_argument("--port", type=int, default=int(os.environ.get("WHOAMI_PORT_NUMBER", "80")))
    p.add_argument("--name", default=os.environ.get("WHOAMI_NAME", ""))
    args = p.parse_args(argv)
    Handler.name = args.name
    server = ThreadingHTTPServer(("", args.port), Handler)
    server.daemon_threads = True
    # PID 1 in a container ignores SIGTERM without a handler: `docker stop` would wait its 10 s
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
