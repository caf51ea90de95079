"""The one-file executable builds and runs without a Python environment of its own.

Slow (~40 s to build), so it runs in the full suite (README test command / CI), and a
developer can skip it with `-m "not binary"`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.binary


def build(work: Path, onedir: bool = False) -> Path:
    if shutil.which("pyinstaller", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pyinstaller is not installed (pip install -e '.[build]')")
    env = {**os.environ, "HOMELAB_ONEDIR": "1" if onedir else "0"}
    subprocess.run([str(Path(sys.executable).parent / "pyinstaller"), "--noconfirm", "--log-level", "ERROR",
                    "--distpath", str(work / "dist"), "--workpath", str(work / "work"),
                    str(ROOT / "build" / "homelab.spec")], check=True, cwd=ROOT / "build", timeout=600, env=env)
    exe = work / "dist" / "homelab" / ("homelab" if onedir else "")
    assert exe.is_file()
    return exe


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("pyi"))


@pytest.fixture(scope="module")
def onedir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-dir build (offered as a tarball): nothing to unpack at start."""
    return build(tmp_path_factory.mktemp("pyi-onedir"), onedir=True)


def clean_env() -> dict[str, str]:
    """No venv on PATH and no PYTHONPATH: the binary must carry everything."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": os.environ.get("HOME", "/root")}


def test_version(binary: Path) -> None:
    t0 = time.monotonic()
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("homelab ")
    print(f"binary: {binary.stat().st_size / 1e6:.1f} MB, --version in {time.monotonic() - t0:.2f} s")


def test_binary_is_at_most_40_mb(binary: Path) -> None:
    assert binary.stat().st_size <= 40e6, f"{binary.stat().st_size / 1e6:.1f} MB"


def test_onedir_runs_from_a_copied_tree(onedir: Path, tmp_path: Path) -> None:
    """Unpacked from its tarball elsewhere, the one-dir build validates (symlinks kept by tar)."""
    tarball = tmp_path / "homelab-onedir.tar.gz"
    subprocess.run(["tar", "czf", str(tarball), "-C", str(onedir.parent.parent), "homelab"], check=True)
    subprocess.run(["tar", "xzf", str(tarball), "-C", str(tmp_path)], check=True)
    exe = tmp_path / "homelab" / "homelab"
    t0 = time.monotonic()
    out = subprocess.run([str(exe), "validate", str(ROOT / "config.example.yaml")], capture_output=True, text=True,
                         env=clean_env(), timeout=60)
    assert out.returncode == 0 and "valid" in out.stdout, out.stderr
    print(f"onedir: tarball {tarball.stat().st_size / 1e6:.1f} MB, validate in {time.monotonic() - t0:.2f} s")


def test_validate_example(binary: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(binary), "validate", str(ROOT / "config.example.yaml")], capture_output=True,
                         text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute:\n  machnes: []\n")
    out = subprocess.run([str(binary), "validate", str(bad)], capture_output=True, text=True, env=clean_env(),
                         timeout=60)
    assert out.returncode == 2 and "did you mean 'machines'?" in out.stderr


def test_worker_runs_inside_binary(binary: Path) -> None:
    """The frozen binary starts its own pyinfra worker (gevent, pyinfra ops) from itself."""
    out = subprocess.run([str(binary), "__pyinfra-worker"], input='{"hosts": [], "ops": {}}', capture_output=True,
                         text=True, env=clean_env(), timeout=60)
    assert out.returncode == 0, out.stderr
    assert '"event": "done"' in out.stdout


def test_binary_carries_the_recipes(binary: Path) -> None:
    """Where homelab/recipes_dir.py looks in a frozen run: <_MEIPASS>/homelab/recipes."""
    viewer = Path(sys.executable).parent / "pyi-archive_viewer"
    out = subprocess.run([str(viewer), "--list", "--brief", str(binary)], capture_output=True, text=True,
                         check=True, timeout=60)
    inside = set(out.stdout.split())
    wanted = [p.name for p in (ROOT / "recipes").iterdir() if p.suffix in (".yaml", ".md")]
    assert "README.md" in wanted
    assert not [n for n in wanted if f"homelab/recipes/{n}" not in inside], out.stdout[-2000:]


HERE = """\
privilege:
  generate_key: true
compute:
  base:
    timezone: Europe/Vienna
  machines:
    - {{name: in-place, address: local}}
permissions:
  users:
    - name: alice
      keys: ["{key}"]
      sudo: true
"""


@pytest.mark.lab
def test_binary_provisions_the_server_it_is_copied_to(binary: Path, lab) -> None:  # type: ignore[no-untyped-def]
    """The one-off server: copy `homelab` to a fresh Debian server and let it provision that
    server in place (`address: local`: no SSH to itself, no key, no agent), its pyinfra worker
    running from the binary through pyinfra's local connector. Compute and permissions (sshd
    hardened, firewall; the guard confirms through a new local shell) converge; the second
    apply changes nothing."""
    host = lab.baseline_hosts[-1] if getattr(lab, "baseline_hosts", None) else "h1"
    lab.reset(host)
    with binary.open("rb") as fh:  # copy over ssh, as `scp homelab root@server:` would
        subprocess.run([*lab.ssh_argv(host), "cat > /root/homelab && chmod 755 /root/homelab"], stdin=fh,
                       check=True, timeout=300)
    lab_key = Path(str(lab.key) + ".pub").read_text().strip()  # alice: the person who logs in later
    lab.run(host, "cat > /root/here.yaml", input=HERE.format(key=lab_key), check=True)
    # no Python of homelab's on the server: the binary carries it (the server's python3 is not used)
    first = lab.run(host, "cd /root && ./homelab apply here.yaml --yes", timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "confirmed by a new login as" in first.stdout + first.stderr
    # root may no longer log in (permissions hardened sshd): from now on alice + sudo, as a person would
    argv = lab.ssh_argv(host)
    argv[-1] = argv[-1].replace("root@", "alice@")

    def as_alice(cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, cmd], capture_output=True, text=True, timeout=600)

    assert as_alice("hostname").stdout.strip() == "in-place"
    assert as_alice("readlink /etc/localtime").stdout.strip().endswith("Europe/Vienna")
    assert "policy drop" in as_alice("sudo -n nft list ruleset").stdout
    second = as_alice("sudo -n sh -c 'cd /root && ./homelab apply here.yaml --yes'")
    assert second.returncode == 0 and "apply ok: 0 change(s)" in second.stderr, second.stderr
    log = as_alice("sudo -n sh -c 'cat $(ls -t /root/.local/state/homelab/logs/*-apply.log | head -1)'").stdout
    assert "apply finished in" in log and ", 1 remote commands" in log, log[-2000:]
    state = as_alice("sudo -n cat /root/here.state.json").stdout
    assert "host_key" not in state  # no host key is involved in provisioning in place
    lab.reset(host)  # leave the session's host as other modules expect it
