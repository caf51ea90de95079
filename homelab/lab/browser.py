"""Headless Chromium (Debian package `chromium`) as a lab host's web client.

A client no one here wrote: tests point it at an app through ingress and read what it ended
on. It runs on the outer machine but inside a lab host's network namespace (`nsenter --net`),
so its packets leave from that host's address, as a person's browser on that machine would.

- Trust: Chromium on Linux reads the NSS database in `$HOME/.pki/nssdb` (not the profile dir).
  The helper gives each run a fresh HOME with a db that holds only the CA the caller names
  (`certutil` from libnss3-tools), so an untrusted certificate fails the load: no
  `--ignore-certificate-errors`.
- Names: the netns has no DNS; `--host-resolver-rules` maps each name to its lab address.
- The closed network: background networking, component updates, sync and QUIC are off
  (without them Chromium retries Google's hosts, /work/.library/env/machines/python.md).
- What it ended on: `--dump-dom` after `--virtual-time-budget` (virtual time runs on while
  the page's script navigates), and the cookies Chromium kept, read from the profile's sqlite
  `Cookies` file after it exited (`--password-store=basic`: no keyring wanted; names, hosts
  and flags are plain text, values are not read).
- Bounded: a timeout kills its process group (it starts in its own session), and the
  profile is removed afterwards.
"""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

CHROMIUM = "/usr/bin/chromium"
CERTUTIL = "/usr/bin/certutil"
PACKAGES = ("chromium", "libnss3-tools")  # what build/install.sh installs for these tests


@dataclass(frozen=True)
class Cookie:
    host: str
    name: str
    secure: bool
    http_only: bool


@dataclass(frozen=True)
class PageLoad:
    """What Chromium ended on: the DOM it dumped and the cookies it kept."""

    returncode: int
    dom: str
    cookies: tuple[Cookie, ...]
    stderr: str


def resolver_rules(names: Mapping[str, str]) -> str:
    """{"notes.lab.test": "10.0.3.2"} -> "MAP notes.lab.test 10.0.3.2" (sorted: stable argv)."""
    return ", ".join(f"MAP {name} {address}" for name, address in sorted(names.items()))


def chromium_argv(url: str, profile: Path, names: Mapping[str, str], *, budget_ms: int = 15000,
                  chromium: str = CHROMIUM) -> list[str]:
    """The Chromium command line for one headless page load that prints the final DOM."""
    argv = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-default-browser-check", "--no-proxy-server", "--password-store=basic",
        f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", "--dump-dom",
    ]
    if names:
        argv.append(f"--host-resolver-rules={resolver_rules(names)}")
    return [*argv, url]


def nssdb_argv(home: Path, ca_file: Path, nickname: str, *, certutil: str = CERTUTIL) -> list[list[str]]:
    """certutil commands: a new empty NSS db in HOME/.pki/nssdb, trusting ca_file for TLS servers."""
    db = f"sql:{home / '.pki' / 'nssdb'}"
    return [
        [certutil, "-N", "-d", db, "--empty-password"],
        [certutil, "-A", "-d", db, "-n", nickname, "-t", "C,,", "-i", str(ca_file)],
    ]


def netns_argv(netns: str) -> list[str]:
    """Prefix that runs a command in the named network namespace (/run/netns/NAME) only:
    files, users and processes stay the outer machine's (Chromium is installed there)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--"]


def read_cookies(profile: Path) -> tuple[Cookie, ...]:
    """Cookies Chromium stored (Default/Cookies), without their values."""
    db = profile / "Default" / "Cookies"
    if not db.exists():
        return ()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT host_key, name, is_secure, is_httponly FROM cookies ORDER BY host_key, name")
        return tuple(Cookie(host, name, bool(sec), bool(ho)) for host, name, sec, ho in rows)
    finally:
        con.close()


def load_page(netns: str | None, url: str, ca_pem: str, names: Mapping[str, str], *, timeout: float = 90,
              budget_ms: int = 15000, chromium: str = CHROMIUM, certutil: str = CERTUTIL) -> PageLoad:
    """Load url in headless Chromium inside netns, trusting only ca_pem; the DOM and cookies it ended on.

    netns None: this machine's own network (the helper's tests, without a lab)."""
    work = Path(tempfile.mkdtemp(prefix="homelab-chromium-"))
    try:
        home, profile, ca_file = work / "home", work / "profile", work / "ca.pem"
        home.mkdir()
        ca_file.write_text(ca_pem)
        (home / ".pki" / "nssdb").mkdir(parents=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
        for argv in nssdb_argv(home, ca_file, "homelab-lab-ca", certutil=certutil):
            subprocess.run(argv, env=env, check=True, capture_output=True, text=True, timeout=30)
        argv = chromium_argv(url, profile, names, budget_ms=budget_ms, chromium=chromium)
        if netns is not None:
            argv = [*netns_argv(netns), *argv]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate()
            err += f"\nchromium: killed after {timeout:g} s"
        finally:
            _kill_group(proc.pid)  # helpers it may have left (zygote, utility processes): its own group only
        return PageLoad(proc.returncode, out, read_cookies(profile), err)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    """SIGKILL the process group Chromium leads (its own session: nothing else is in it).

    After Chromium itself was reaped the id stays its group's while any member lives (the
    kernel does not hand out a PID in use as a group id); with none left this finds nothing."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
