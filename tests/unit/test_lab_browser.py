"""homelab.lab.browser: Chromium's command line, the NSS trust db, cookies read back, and a
bounded run (a stand-in `chromium` script here; the real one runs in tests/e2e/test_ingress_layer.py)."""
from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from homelab.lab.browser import (
    Cookie, chromium_argv, load_page, netns_argv, nssdb_argv, read_cookies, resolver_rules,
)


def test_chromium_argv_is_headless_closed_network_and_dumps_the_dom() -> None:
    argv = chromium_argv("https://notes.lab.test/.web/", Path("/tmp/p"),
                         {"notes.lab.test": "10.80.0.12", "cal.lab.test": "10.80.0.12"}, budget_ms=9000)
    assert argv == [
        "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-default-browser-check", "--no-proxy-server", "--password-store=basic",
        "--user-data-dir=/tmp/p", "--virtual-time-budget=9000", "--dump-dom",
        "--host-resolver-rules=MAP cal.lab.test 10.80.0.12, MAP notes.lab.test 10.80.0.12",
        "https://notes.lab.test/.web/",
    ]
    assert not any("ignore-certificate" in a for a in argv)  # trust comes from the NSS db only
    assert not any(a.startswith("--host-resolver-rules") for a in chromium_argv("https://x/", Path("/p"), {}))


def test_resolver_rules_are_sorted() -> None:
    assert resolver_rules({"b.test": "10.0.0.2", "a.test": "10.0.0.1"}) == "MAP a.test 10.0.0.1, MAP b.test 10.0.0.2"


def test_nssdb_is_made_empty_then_trusts_the_ca_for_servers() -> None:
    assert nssdb_argv(Path("/h"), Path("/w/ca.pem"), "lab") == [
        ["/usr/bin/certutil", "-N", "-d", "sql:/h/.pki/nssdb", "--empty-password"],
        ["/usr/bin/certutil", "-A", "-d", "sql:/h/.pki/nssdb", "-n", "lab", "-t", "C,,", "-i", "/w/ca.pem"],
    ]


def test_netns_argv_enters_only_the_network_namespace() -> None:
    assert netns_argv("hl3-h3") == ["nsenter", "--net=/run/netns/hl3-h3", "--"]


def write_cookies_db(profile: Path, rows: list[tuple[str, str, int, int]]) -> None:
    """The columns of Chromium's cookies table that read_cookies uses (the real table has more)."""
    (profile / "Default").mkdir(parents=True)
    con = sqlite3.connect(profile / "Default" / "Cookies")
    con.execute("CREATE TABLE cookies (host_key TEXT, name TEXT, encrypted_value BLOB, is_secure INTEGER, "
                "is_httponly INTEGER)")
    con.executemany("INSERT INTO cookies VALUES (?, ?, x'00', ?, ?)", rows)
    con.commit()
    con.close()


def test_read_cookies_gives_hosts_names_and_flags(tmp_path: Path) -> None:
    assert read_cookies(tmp_path) == ()  # Chromium kept none
    write_cookies_db(tmp_path, [(".notes.lab.test", "techaro.lol-anubis-auth-ab12", 1, 0), ("cal.lab.test", "s", 0, 1)])
    assert read_cookies(tmp_path) == (Cookie(".notes.lab.test", "techaro.lol-anubis-auth-ab12", True, False),
                                      Cookie("cal.lab.test", "s", False, True))


# a stand-in for chromium: finds its profile in argv, stores a cookie, prints a DOM; with a file
# "slow" beside it, it leaves a child in its process group and hangs, as a stuck browser would
FAKE_CHROMIUM = r'''
import os, sqlite3, subprocess, sys, time
here = os.path.dirname(os.path.abspath(sys.argv[0]))
profile = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--user-data-dir="))
assert os.path.isdir(os.path.join(os.environ["HOME"], ".pki", "nssdb"))  # where Chromium looks for trust
if os.path.exists(os.path.join(here, "slow")):
    child = subprocess.Popen(["sleep", "300"])
    open(os.path.join(here, "child.pid"), "w").write(str(child.pid))
    time.sleep(300)
os.makedirs(os.path.join(profile, "Default"))
con = sqlite3.connect(os.path.join(profile, "Default", "Cookies"))
con.execute("CREATE TABLE cookies (host_key TEXT, name TEXT, is_secure INTEGER, is_httponly INTEGER)")
con.execute("INSERT INTO cookies VALUES ('.a.test', 'auth', 1, 0)")
con.commit()
print("<html><title>" + sys.argv[-1] + "</title></html>")
'''


def fake_tools(tmp_path: Path) -> tuple[str, str]:
    chromium = tmp_path / "chromium"
    chromium.write_text(f"#!{sys.executable}\n{FAKE_CHROMIUM}")
    certutil = tmp_path / "certutil"
    certutil.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'certutil.log'}\n")
    for tool in (chromium, certutil):
        tool.chmod(0o755)
    return str(chromium), str(certutil)


def leftover_work_dirs() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("homelab-chromium-")}


def test_load_page_returns_dom_and_cookies_and_removes_its_profile(tmp_path: Path) -> None:
    chromium, certutil = fake_tools(tmp_path)
    before = leftover_work_dirs()
    got = load_page(None, "https://a.test/", "PEM", {"a.test": "10.0.0.1"}, chromium=chromium, certutil=certutil)
    assert got.returncode == 0, got.stderr
    assert "<title>https://a.test/</title>" in got.dom
    assert got.cookies == (Cookie(".a.test", "auth", True, False),)
    calls = (tmp_path / "certutil.log").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["-N", "-A"] and "-t C,, -i" in calls[1]
    assert leftover_work_dirs() == before


def test_a_hung_chromium_is_killed_with_its_process_group(tmp_path: Path) -> None:
    chromium, certutil = fake_tools(tmp_path)
    (tmp_path / "slow").touch()
    before = leftover_work_dirs()
    t = time.monotonic()
    got = load_page(None, "https://a.test/", "PEM", {}, timeout=2, chromium=chromium, certutil=certutil)
    assert time.monotonic() - t < 10
    assert "killed after 2 s" in got.stderr and got.dom == "" and got.returncode == -9
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the group's SIGKILL is delivered; the child is reaped by init
    assert not Path(f"/proc/{child}").exists() or Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
    assert leftover_work_dirs() == before
