"""Benchmark: a no-op `homelab apply` of the whole stack vs equivalent work as plain pyinfra and Ansible.

Not a timed test: run it by hand (root, lab tools installed):
    sudo .venv/bin/python bench/noop_apply.py [--hosts 1 3 10] [--rounds 5]

It brings up its own lab (instance HOMELAB_LAB_INSTANCE, default 6) and converges the hosts
once with every built layer (`homelab lab demo`'s config: privilege, compute, the mesh
between all hosts, permissions: an operator user, hardened sshd, nftables firewall,
unattended upgrades on all; apps radicale and miniflux on postgres behind Caddy and Anubis
on the first host, backed up to rest-server on the last; billing has no host work) and once
with each peer; then it times, interleaved round by round so all tools see the
same background load: `homelab apply --yes` (the CLI, end to end), `pyinfra -y` of
bench/equivalent/deploy.py and `ansible-playbook` of bench/equivalent/playbook.yml (the base
layer's 4 operations plus the 20-operation workload of ../shared/research/perf-workload/:
24 per host). The peers log in as the operator user homelab made (root login is off by then).
Every run's result is checked to be a no-op, so a failing run cannot look fast. Reports median
[min-max] wall seconds, remote commands per host and the CPU each host spent on the run (its
container's cgroup: sshd, sudo, the probes; the lab's hosts share this machine's cores, so
this says what more hosts cost here). Method: ../shared/research/anchors-performance.md (C2).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQ = ROOT / "bench" / "equivalent"
BIN = Path(sys.executable).parent
NAMES = {f"h{i}": f"node-{i}" for i in range(1, 11)}
OPERATOR = "ops"  # the operator user the permissions layer makes; everyone logs in as it afterwards


def whole_stack(inv: dict, hosts: list[str], password_file: str) -> str:
    """Every built layer's config for these lab hosts, as `homelab lab demo` has it: the mesh and
    the permissions on all of them, the apps (radicale, miniflux on postgres, behind Caddy and
    Anubis) on the first, their backups to rest-server on the last."""
    from homelab.lab.demo import DEMO_LAYERS, render_lab_config

    nodes = "\n".join(f"    - {{name: {NAMES[h]}, endpoint: auto}}" for h in hosts)
    return render_lab_config(inv, hosts=hosts, names=NAMES) + DEMO_LAYERS.format(
        mesh_nodes=nodes, first=NAMES[hosts[0]], last=NAMES[hosts[-1]], service_app="", password_file=password_file)


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str], float]:
    """Wall seconds, the process, and the CPU seconds it used on this machine (with its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    secs = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return secs, proc, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


class Variant:
    def __init__(self, name: str, work: Path, hosts: list[str], inv: dict) -> None:
        self.name, self.work, self.hosts, self.inv = name, work, hosts, inv
        self.times: list[float] = []
        self.commands: list[float] = []
        self.host_cpu: list[float] = []  # ms of CPU per host per run, from each lab host's cgroup
        self.local_cpu: list[float] = []  # ms of CPU on this machine per run (the tool and its children)
        # per run: all its CPU (here + every host) over this machine's cores, the lab hosts sharing
        # them: no schedule can finish faster (seconds)
        self.floor: list[float] = []
        self.last_cpu = 0.0

    def timed(self, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
        secs, proc, self.last_cpu = run(argv, env)
        return secs, proc

    def once(self) -> None:
        raise NotImplementedError


class Homelab(Variant):
    def setup(self) -> None:
        self.cfg = self.work / "bench.yaml"
        password = self.work / "bench.restic-password"
        password.write_text(secrets.token_urlsafe(32) + "\n")  # the throwaway lab repository's
        password.chmod(0o600)
        self.cfg.write_text(whole_stack(self.inv, self.hosts, str(password)))
        self.env = {"XDG_STATE_HOME": str(self.work / "xdg")}
        secs, p = self.timed([str(BIN / "homelab"), "apply", str(self.cfg), "--yes", "--accept-new-host-keys"], self.env)
        if p.returncode != 0:
            raise SystemExit(f"homelab could not converge the hosts:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        self.cold = secs

    def once(self) -> None:
        secs, p = self.timed([str(BIN / "homelab"), "apply", str(self.cfg), "--yes"], self.env)
        if p.returncode != 0 or "apply ok: 0 change(s)" not in p.stderr:
            raise SystemExit(f"homelab no-op run was not a clean no-op:\n{p.stderr}")
        logs = sorted((self.work / "xdg" / "homelab" / "logs").glob("*-apply.log"), key=lambda f: f.stat().st_mtime)
        m = re.search(r"apply finished in [0-9.]+ s, (\d+) remote commands", logs[-1].read_text())
        self.times.append(secs)
        self.commands.append(int(m.group(1)) / len(self.hosts) if m else float("nan"))


class Pyinfra(Variant):
    def setup(self) -> None:
        rows = [(self.inv_host(h)["address"], {"homelab_name": NAMES[h], "base": "/srv/hlbench/pyinfra"})
                for h in self.hosts]
        self.inventory = self.work / "inventory.py"
        self.inventory.write_text(
            f"hosts = ({rows!r}, {{'ssh_user': {OPERATOR!r}, 'ssh_key': {self.inv['ssh_key']!r}, "
            f"'ssh_known_hosts_file': {self.inv['known_hosts']!r}, 'ssh_strict_host_key_checking': 'yes', "
            f"'ssh_allow_agent': False, 'ssh_look_for_keys': False}})\n")
        self.cold, p = self.run()
        if p.returncode != 0:
            raise SystemExit(f"pyinfra could not converge the hosts:\n{(p.stdout + p.stderr)[-3000:]}")

    def run(self) -> tuple[float, subprocess.CompletedProcess[str]]:
        return self.timed([sys.executable, str(EQ / "pyinfra_counting.py"), "-y", str(self.inventory), str(EQ / "deploy.py")],
                   {"PYINFRA_PROGRESS": "off"})

    def inv_host(self, h: str) -> dict:
        return next(x for x in self.inv["hosts"] if x["name"] == h)

    def once(self) -> None:
        secs, p = self.run()
        text = p.stdout + p.stderr
        if p.returncode != 0 or "No changes" not in text or re.search(r"Changed:\s*[1-9]", text):
            raise SystemExit(f"pyinfra run was not a clean no-op:\n{text[-3000:]}")
        m = re.search(r"remote_commands=(\d+)", p.stderr)
        self.times.append(secs)
        self.commands.append(int(m.group(1)) / len(self.hosts) if m else float("nan"))


class Ansible(Variant):
    def setup(self) -> None:
        lines = ["[all]"] + [f"{NAMES[h]} ansible_host={next(x for x in self.inv['hosts'] if x['name'] == h)['address']}"
                             f" homelab_name={NAMES[h]} base=/srv/hlbench/ansible" for h in self.hosts]
        self.inventory = self.work / "hosts.ini"
        self.inventory.write_text("\n".join(lines) + "\n")
        (self.work / "ansible.cfg").write_text(
            f"[defaults]\nhost_key_checking = True\nforks = {max(5, len(self.hosts))}\n"
            "interpreter_python = /usr/bin/python3\n"
            f"retry_files_enabled = False\nremote_user = {OPERATOR}\n"
            f"private_key_file = {self.inv['ssh_key']}\n"
            "[ssh_connection]\npipelining = True\n"
            f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o UserKnownHostsFile={self.inv['known_hosts']}\n")
        self.env = {"ANSIBLE_CONFIG": str(self.work / "ansible.cfg"),
                    "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.work / "cp")}
        self.cold, p = self.run()
        if p.returncode != 0:
            raise SystemExit(f"ansible could not converge the hosts:\n{p.stdout[-3000:]}")
        self.close_masters()

    def run(self) -> tuple[float, subprocess.CompletedProcess[str]]:
        return self.timed([str(BIN / "ansible-playbook"), "-vvv", "-i", str(self.inventory), str(EQ / "playbook.yml")],
                   self.env)

    def close_masters(self) -> None:  # every run starts without a warm ControlMaster
        for sock in (self.work / "cp").glob("*"):
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "x"], capture_output=True)

    def once(self) -> None:
        secs, p = self.run()
        if p.returncode != 0 or not re.search(r"changed=0\s", p.stdout) or re.search(r"changed=[1-9]", p.stdout):
            raise SystemExit(f"ansible run was not a clean no-op:\n{p.stdout[-3000:]}")
        execs = len(re.findall(r"SSH: EXEC ssh ", p.stdout))
        self.times.append(secs)
        self.commands.append(execs / len(self.hosts))
        self.close_masters()


def fmt(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[1, 3, 10])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="leave the lab up")
    args = ap.parse_args()
    os.environ.setdefault("HOMELAB_LAB_INSTANCE", "6")
    # An installed homelab (wheel, PyInstaller) ships bytecode, and pyinfra/ansible in
    # site-packages have theirs from pip. An editable checkout gets .pyc files only when Python
    # may write them (PYTHONDONTWRITEBYTECODE=1 stops that), so compile once here: otherwise
    # every timed homelab run would recompile its own modules and the comparison is unfair.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "homelab")], check=True,
                   stdout=subprocess.DEVNULL)
    from homelab.lab import Lab

    lab = Lab()
    lab.down()
    lab.up(max(args.hosts))
    lab.ensure_images()  # the apps' images, from the lab registry
    try:
        inv = lab.inventory()
        results = []
        for n in args.hosts:
            hosts = [f"h{i}" for i in range(1, n + 1)]
            lab.reset(*hosts)  # fresh machines: the first converge is a cold one, and no earlier login lingers
            with tempfile.TemporaryDirectory(prefix=f"hlbench{n}-") as tmp:
                variants: list[Variant] = []
                for cls in (Homelab, Pyinfra, Ansible):
                    if cls is Ansible and not (BIN / "ansible-playbook").exists():
                        continue
                    work = Path(tmp) / cls.__name__
                    work.mkdir()
                    v = cls(cls.__name__.lower(), work, hosts, inv)
                    v.setup()  # type: ignore[attr-defined]
                    v.once()  # warm-up, not counted
                    v.times.clear()
                    v.commands.clear()
                    variants.append(v)
                for _ in range(args.rounds):
                    for v in variants:
                        before = [lab.host_cpu_seconds(h) for h in hosts]
                        v.once()
                        after = [lab.host_cpu_seconds(h) for h in hosts]
                        if all(x is not None for x in before + after):
                            used = sum(b - a for a, b in zip(before, after))  # type: ignore[operator]
                            v.host_cpu.append(used * 1000 / len(hosts))
                            v.floor.append((used + v.last_cpu) / (os.cpu_count() or 1))
                        v.local_cpu.append(v.last_cpu * 1000)
                results.append((n, variants))
        print(f"no-op apply of the whole stack, {args.rounds} interleaved rounds, median [min-max]")
        print(f"CPU floor: the run's CPU, here and on all hosts, over this machine's {os.cpu_count()} cores")
        print("| hosts | tool | wall s | remote commands / host | host CPU ms / host | local CPU ms | CPU floor s "
              "| vs homelab | first converge s |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for n, variants in results:
            base = statistics.median(variants[0].times)
            for v in variants:
                ratio = "" if v is variants[0] else f"{statistics.median(v.times) / base:.1f}x"
                print(f"| {n} | {v.name} | {fmt(v.times)} | {fmt(v.commands, 1)} | {fmt(v.host_cpu, 0)} | {fmt(v.local_cpu, 0)} "
                      f"| {fmt(v.floor)} | {ratio} "
                      f"| {v.cold:.1f} |")
        if len(results) > 1:
            one, most = results[0], results[-1]
            for a, b in zip(one[1], most[1]):
                print(f"{a.name}: {most[0]} hosts take {statistics.median(b.times) / statistics.median(a.times):.2f}x "
                      f"the time of {one[0]}" + (f"; their CPU floor alone is {statistics.median(b.floor) / statistics.median(a.times):.2f}x"
                                                 if b.floor else ""))
    finally:
        if not args.keep:
            lab.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
