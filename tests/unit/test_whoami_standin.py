"""The lab's whoami STAND-IN (homelab/lab/images/files/whoami_standin.py) keeps the part of
traefik/whoami's HTTP contract the load-balancing test reads: it runs here on loopback."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "homelab/lab/images/files/whoami_standin.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def whoami() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port), "--name", "copy-1"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            urllib.request.urlopen(url + "/bench", timeout=1).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield url, proc
    proc.kill()
    proc.wait()


def status(url: str, data: bytes | None = None) -> int:
    try:
        return int(urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5).status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_root_names_the_host_and_the_request(whoami: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = whoami
    text = urllib.request.urlopen(urllib.request.Request(url + "/x?y=1", headers={"X-Real-Ip": "10.0.0.9"})).read().decode()
    lines = text.splitlines()
    assert lines[0] == f"Hostname: {socket.gethostname()}" and lines[1] == "Name: copy-1"
    assert "GET /x?y=1 HTTP/1.1" in lines and "X-Real-Ip: 10.0.0.9" in lines
    api = json.loads(urllib.request.urlopen(url + "/api").read())
    assert (api["hostname"], api["name"], api["method"]) == (socket.gethostname(), "copy-1", "GET")


def test_health_is_200_until_a_post_sets_another_status(whoami: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = whoami
    assert status(url + "/health") == 200
    assert status(url + "/health", b"503") == 200
    assert status(url + "/health") == 503
    assert status(url + "/health", b"nope") == 400


def test_sigterm_stops_it_at_once(whoami: tuple[str, subprocess.Popen[bytes]]) -> None:
    _, proc = whoami
    t = time.monotonic()
    proc.terminate()  # docker stop sends SIGTERM to PID 1, which has no default handler in a container
    assert proc.wait(timeout=5) == 0 and time.monotonic() - t < 2
