"""The storage layer's diff with claims built in the test: first plan, the deferred credential pass,
converged (nothing to do), placement notes and same-machine warnings, mesh or not, disks, claims,
secrets kept out of every summary, and the CLI's pure parts."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable

import pytest

from homelab.claims import BackupPath, Claims, NeedsPackage, OpenPort
from homelab.config import parse_config
from homelab.config.recipe import DumpSpec
from homelab.layers.storage import cli, restserver
from homelab.layers.storage.disks import Device, Signature
from homelab.layers.storage.plan import StorageInputs, credential_file, plan_storage, probe_layout
from homelab.layers.storage.probes import DiskView, FileState, HostView, parse_view, storage_probes
from homelab.layers.storage.status import storage_monitors
from homelab.model import Change, Health, LayerPlan
from homelab.probe import ProbeResult, render_probe_script
from homelab.secrets import Secret

PASSWORD = Secret("repo-password-7f3a9c")
CRED = Secret("Zq81restcredential0000000000abcd")

BASE = """\
compute:
  machines:
    - {name: h1, address: 10.0.0.1}
    - {name: h2, address: 10.0.0.2}
storage:
  repositories:
    - {name: nas, type: rest, machine: h1}
  password: {env: RESTIC_PASSWORD}
"""
MESH = BASE + "mesh:\n  cidr: 10.100.0.0/24\n  nodes: [{name: h1, endpoint: auto}, {name: h2, endpoint: auto}]\n"
WEB = BackupPath("apps", "apps[0]", "h2", "web", ("/srv/homelab/web/data",), None, ("web.service",))


def config(text: str = BASE, claims: Iterable[Any] = (WEB,)) -> Any:
    cfg = parse_config(text, Path("/tmp/c.yaml"))
    return dataclasses.replace(cfg, claims=Claims(cfg.claims.items + tuple(claims)))


def inputs(cfg: Any, views: dict[str, HostView], creds: dict[tuple[str, str], Secret] | None = None,
           mesh: dict[str, str] | None = None) -> StorageInputs:
    return StorageInputs(cfg.get("storage"), tuple(cfg.claims.of(BackupPath)), {"h1": "10.0.0.1", "h2": "10.0.0.2"},
                         mesh or {}, "wg0", {"nas": PASSWORD}, {}, views, creds or {})


def applied(view: HostView, changes: Iterable[Change]) -> HostView:
    """The view of a host after `changes` ran (what the worker's ops make true)."""
    files = dict(view.files)
    pkgs = dict(view.packages)
    units = dict(view.units)
    for change in changes:
        for op in change.ops:
            k = op.kwargs
            if op.name == "files.put_text":
                c = k["content"]
                text = c.reveal() if isinstance(c, Secret) else c
                files[k["dest"]] = FileState(int(k["mode"], 8), k["user"], k["group"], hashlib.sha256(text.encode()).hexdigest())
            elif op.name == "files.directory":
                old = files.get(k["path"])
                files[k["path"]] = FileState(int(k.get("mode") or "755", 8), k.get("user") or (old.owner if old else "root"),
                                             k.get("group") or (old.group if old else "root"), None)
            elif op.name == "apt.packages":
                pkgs.update({p: "1.0" for p in k["packages"]})
            elif op.name == "systemd.service":
                units[k["service"]] = ("enabled", "active")
    return dataclasses.replace(view, files=files, packages=pkgs, units=units)


def run(plan: LayerPlan, views: dict[str, HostView]) -> dict[str, HostView]:
    return {h: applied(v, [c for c in plan.changes if c.host == h and not c.deferred]) for h, v in views.items()}


def converge(cfg: Any, mesh: dict[str, str] | None = None) -> tuple[list[LayerPlan], dict[str, HostView]]:
    views = {"h1": HostView(), "h2": HostView()}
    plans = [plan_storage(inputs(cfg, views, mesh=mesh))]
    views = run(plans[0], views)
    # the credential the first pass generated on h2, read back by the next pass's probe
    creds = {("h2", "nas"): CRED}
    plans.append(plan_storage(inputs(cfg, views, creds, mesh)))
    views = run(plans[1], views)
    plans.append(plan_storage(inputs(cfg, views, creds, mesh)))
    return plans, views


def summaries(plan: LayerPlan) -> list[str]:
    return [f"{c.host}: {c.summary}" for c in plan.changes]


def test_first_pass_generates_the_credential_and_defers_what_needs_it() -> None:
    plan = plan_storage(inputs(config(), {"h1": HostView(), "h2": HostView()}))
    assert not plan.blocked
    s = summaries(plan)
    assert not any("install packages" in line for line in s)  # claims: compute's one apt transaction
    assert "h1: restic, restic-rest-server not installed yet (compute's package step installs them)" in plan.notes
    assert "h2: restic, jq, curl not installed yet (compute's package step installs them)" in plan.notes
    gen = next(c for c in plan.changes if c.summary == "rest credential for nas")
    assert gen.host == "h2"
    assert credential_file(config().get("storage").repositories[0]) in gen.ops[0].kwargs["commands"][0]
    deferred = {c.summary: c.deferred for c in plan.changes if c.deferred}
    assert deferred == {
        "backup web -> nas: credentials file /etc/homelab/storage/nas.env": "needs the rest credential generated on the host in this apply",
        "rest-server nas: htpasswd": "needs the credentials generated on h2 in this apply",
    }
    # order on h2: directories, credential, then the backup's files (packages: compute, before)
    h2 = [c.summary for c in plan.changes if c.host == "h2"]
    assert h2[:2] == ["directories: 6", "rest credential for nas"]


def test_second_pass_writes_env_and_htpasswd_then_nothing_is_left() -> None:
    plans, views = converge(config())
    second = summaries(plans[1])
    assert second == ["h1: rest-server nas: write 1 file", "h2: backup web -> nas: write 1 file"]
    htp = next(op for c in plans[1].changes for op in c.ops if op.kwargs.get("dest") == restserver.HTPASSWD)
    line = htp.kwargs["content"].splitlines()[-1]
    assert line == "h2:" + restserver.stable_hash(CRED, "h2")
    # rest-server reads a changed htpasswd only at its next periodic check: restarted with it
    server = next(c for c in plans[1].changes if c.host == "h1")
    assert server.ops[-1].kwargs == {"service": "restic-rest-server.service", "running": True, "enabled": True,
                                     "restarted": True}
    assert plans[2].empty, summaries(plans[2])
    assert "h2: backup web -> nas: 13 files as wanted" in plans[2].unchanged
    # and the same credential gives the same htpasswd line on every plan (a reviewed plan matches)
    assert restserver.stable_hash(CRED, "h2") == restserver.stable_hash(Secret(CRED.reveal()), "h2")


def test_secrets_only_as_secret_objects_in_ops() -> None:
    plans, _ = converge(config())
    for plan in plans:
        text = json.dumps([summaries(plan), [c.detail for c in plan.changes], plan.notes, plan.warnings,
                           plan.unchanged, [[op.to_json(reveal=False) for op in c.ops] for c in plan.changes]])
        assert PASSWORD.reveal() not in text and CRED.reveal() not in text
    pw = next(op for c in plans[0].changes for op in c.ops if op.kwargs.get("dest") == "/etc/homelab/storage/nas.password")
    assert isinstance(pw.kwargs["content"], Secret) and pw.kwargs["mode"] == "600"
    assert pw.kwargs["content"].reveal() == PASSWORD.reveal() + "\n"
    env = next(op for c in plans[1].changes for op in c.ops if op.kwargs.get("dest") == "/etc/homelab/storage/nas.env")
    assert isinstance(env.kwargs["content"], Secret) and env.kwargs["mode"] == "600"
    assert f"RESTIC_REST_PASSWORD='{CRED.reveal()}'" in env.kwargs["content"].reveal()


def test_placement_notes_and_the_same_machine_warning() -> None:
    plan = plan_storage(inputs(config(), {"h1": HostView(), "h2": HostView()}))
    assert "app web: data on h2 in /srv/homelab/web/data; backups to nas (rest-server on h1 at 10.0.0.1)" in plan.notes
    assert "repository nas: no mesh address for h1; rest-server listens on its address 10.0.0.1 instead" in plan.notes
    assert not plan.warnings
    same = BackupPath("apps", "apps[1]", "h1", "notes", ("/srv/homelab/notes",))
    plan = plan_storage(inputs(config(claims=(WEB, same)), {"h1": HostView(), "h2": HostView()}))
    assert plan.warnings == ("app notes: backups to nas land on h1, the machine its data is on: that is not a backup",)


def test_mesh_address_is_where_rest_server_listens() -> None:
    plans, _ = converge(config(MESH), {"h1": "10.100.0.1", "h2": "10.100.0.2"})
    defaults = next(op.kwargs["content"] for c in plans[0].changes for op in c.ops
                    if op.kwargs.get("dest") == restserver.DEFAULTS_FILE)
    assert "LISTEN=10.100.0.1:8000" in defaults
    dropin = next(op.kwargs["content"] for c in plans[0].changes for op in c.ops
                  if op.kwargs.get("dest") == restserver.DROPIN)
    assert "After=wg-quick@wg0.service" in dropin
    assert not any("no mesh address" in n for n in plans[0].notes)
    script = next(op.kwargs["content"] for c in plans[0].changes for op in c.ops
                  if op.kwargs.get("dest") == "/usr/local/lib/homelab/storage/backup-web-nas")
    assert "RESTIC_REPOSITORY=rest:http://10.100.0.1:8000/h2/web/" in script
    assert plans[2].empty


def test_unreachable_client_keeps_its_htpasswd_line_and_is_warned() -> None:
    cfg = config()
    _, views = converge(cfg)
    line = restserver.stable_hash(CRED, "h2")
    only_h1 = {"h1": dataclasses.replace(views["h1"], htpasswd={"h2": line})}
    plan = plan_storage(inputs(cfg, only_h1))
    assert plan.empty and plan.warnings == ("h2: not reachable, its storage is not planned",)


def test_a_dump_runs_in_its_compose_service() -> None:
    dump = DumpSpec("db", ("pg_dump", "-U", "app"), ("psql",), ("true",), "db.sql")
    claim = BackupPath("apps", "apps[0]", "h2", "wiki", (), dump)
    plan = plan_storage(inputs(config(claims=(claim,)), {"h1": HostView(), "h2": HostView()}))
    script = next(op.kwargs["content"] for c in plan.changes for op in c.ops
                  if op.kwargs.get("dest") == "/usr/local/lib/homelab/storage/backup-wiki-nas")
    assert "--stdin-filename db.sql --stdin-from-command -- docker compose -p wiki exec -T db pg_dump -U app" in script


def test_no_password_blocks_the_plan() -> None:
    cfg = config()
    inp = dataclasses.replace(inputs(cfg, {"h1": HostView(), "h2": HostView()}), passwords={})
    assert plan_storage(inp).blocked == ("repository nas: no password (storage.password)",)


DISK = BASE + """\
  disks:
    - {name: data1, machine: h2, by_id: /dev/disk/by-id/virtio-data1, mount: /srv/homelab, FORMAT}
"""


def disk_view(fstype: str | None, signatures: tuple[Signature, ...] = (), uuid: str | None = None) -> HostView:
    dev = Device("/dev/vdb", "S1", None, 10_000_000, "disk", fstype, None, uuid, ())
    return HostView(disks={"data1": DiskView(dev, signatures)})


def test_a_disk_with_data_is_refused_without_format_true() -> None:
    cfg = config(DISK.replace(", FORMAT", ""))
    plan = plan_storage(inputs(cfg, {"h1": HostView(), "h2": disk_view("xfs", (Signature("xfs", "0x0"),), "u-1")}))
    assert len(plan.blocked) == 1 and "disk data1: has data (xfs at offset 0x0); not formatting it" in plan.blocked[0]


def test_format_is_destructive_then_the_mount_follows() -> None:
    cfg = config(DISK.replace("FORMAT", "format: true"))
    plan = plan_storage(inputs(cfg, {"h1": HostView(), "h2": disk_view("xfs", (Signature("xfs", "0x0"),), "u-1")}))
    fmt = next(c for c in plan.changes if c.summary.startswith("disk data1"))
    assert fmt.destructive and fmt.ops[0].kwargs["commands"] == [
        "wipefs -a /dev/disk/by-id/virtio-data1", "mkfs.ext4 -q -L data1 /dev/disk/by-id/virtio-data1",
        "if command -v udevadm >/dev/null; then udevadm settle --timeout=30; fi; for i in $(seq 100); do "
        "[ -n \"$(lsblk -ndo UUID /dev/disk/by-id/virtio-data1 2>/dev/null)\" ] && break; sleep 0.1; done"]
    # mkfs.ext4 comes with e2fsprogs: a package claim, compute installs it before this layer runs
    assert ("h2", "e2fsprogs") in {(c.host, c.package) for c in cfg.claims if isinstance(c, NeedsPackage)}
    assert not any(op.name == "apt.packages" for c in plan.changes for op in c.ops)
    assert any(c.deferred and c.summary == "mount disk data1 at /srv/homelab" for c in plan.changes)
    # once it is ext4: a mount unit by UUID, enabled and started, before the directories
    plan = plan_storage(inputs(cfg, {"h1": HostView(), "h2": disk_view("ext4", (Signature("ext4", "0x438"),), "u-2")}))
    h2 = [c for c in plan.changes if c.host == "h2"]  # packages: compute installs them
    assert h2[0].summary == "mount disk data1 at /srv/homelab: write 1 file" and not h2[0].destructive
    assert "What=/dev/disk/by-uuid/u-2" in h2[0].ops[0].kwargs["content"]
    assert h2[0].ops[-1].kwargs == {"service": "srv-homelab.mount", "running": True, "enabled": True, "restarted": True}
    assert h2[1].summary.startswith("directories")


def test_claims_packages_and_the_port_only_without_a_mesh() -> None:
    plain = config(claims=())
    assert [c for c in plain.claims if c.owner == "storage"] == [
        NeedsPackage("storage", "storage.repositories[0]", "h1", "restic"),
        NeedsPackage("storage", "storage.repositories[0]", "h1", "restic-rest-server"),
        OpenPort("storage", "storage.repositories[0].port", "h1", "tcp", 8000, source="10.0.0.2/32",
                 why="restic rest-server nas for h2"),
    ]
    meshed = config(MESH, claims=())
    assert [type(c).__name__ for c in meshed.claims if c.owner == "storage"] == ["NeedsPackage", "NeedsPackage"]


def test_probes_batch_with_short_timeouts_and_parse_back() -> None:
    """What may hang (df of a dead network mount, curl) has a short limit of its own, the local
    reads share the host script's; the monitors' reads are not part of a plan's probes."""
    cfg = config()
    lay = probe_layout(cfg.get("storage"), tuple(cfg.claims.of(BackupPath)), "h2")
    probes = storage_probes(lay)
    own = {k for k, p in probes.items() if not p.shares_budget}
    assert own == {"storage.space", "storage.append_only"} and all(probes[k].timeout <= 20 for k in own)
    assert "storage.htpasswd" not in probes
    planned = storage_probes(lay, checks=False)
    assert set(planned) == set(probes) - {"storage.space", "storage.status", "storage.append_only"}
    assert not any(word in p.command for p in planned.values() for word in ("df ", "curl -"))
    assert lay.units == ("homelab-backup-web-nas.timer", "homelab-drill-web-nas.timer", "homelab-check-web-nas.timer")
    render_probe_script(probes)  # keys are valid probe keys
    view = parse_view({
        "storage.files": ProbeResult(0, "700 root root /etc/homelab/storage\n600 root root /etc/homelab/storage/nas.password\n"
                                        "@@homelab-hashes@@\nab12000000000000000000000000000000000000000000000000000000000000  /etc/homelab/storage/nas.password\n"),
        "storage.credentials": ProbeResult(0, "/etc/homelab/storage/nas.rest-password\tsecretvalue"),
        "storage.append_only": ProbeResult(0, "web-nas 403"),
        "storage.space": ProbeResult(0, "/srv/homelab\t/dev/vda1 1000 100 900 10% /"),
        "storage.units": ProbeResult(0, "Id=homelab-backup-web-nas.timer\nLoadState=loaded\nUnitFileState=enabled\n"
                                        "ActiveState=active"),  # as `systemctl show` prints it
    })
    assert view.files["/etc/homelab/storage"] == FileState(0o700, "root", "root", None)
    assert view.files["/etc/homelab/storage/nas.password"].sha256 == "ab12000000000000000000000000000000000000000000000000000000000000"
    assert view.credentials == {"/etc/homelab/storage/nas.rest-password": "secretvalue"}
    assert view.append_only == {"web-nas": "403"} and view.space["/srv/homelab"].avail == 900
    assert view.units["homelab-backup-web-nas.timer"] == ("enabled", "active")


def test_files_probe_runs_in_a_real_shell(tmp_path: Path) -> None:
    """The batched stat + sha256sum, run by sh here: modes, owners, digests; a directory has
    none; a name with a backslash (as systemd escapes mount units) keeps its digest."""
    import os
    import subprocess

    from homelab.layers.storage.probes import files_probe, parse_files

    (tmp_path / "d").mkdir(mode=0o750)
    plain, odd = tmp_path / "plain.conf", tmp_path / "srv-homelab\\x2ddata.mount"
    plain.write_text("x=1\n")
    odd.write_text("[Mount]\n")
    plain.chmod(0o600)
    probe = files_probe([str(tmp_path / "d"), str(plain), str(odd), str(tmp_path / "missing")])
    out = subprocess.run(["sh", "-c", probe.command], capture_output=True, text=True, check=True)
    got = {k: v for k, v in parse_files(ProbeResult(0, out.stdout)).items() if k.startswith(str(tmp_path))}
    me = os.getuid()
    assert set(got) == {str(tmp_path / "d"), str(plain), str(odd)}
    assert got[str(tmp_path / "d")].mode == 0o750 and got[str(tmp_path / "d")].sha256 is None
    assert got[str(plain)].mode == 0o600 and got[str(plain)].sha256 == hashlib.sha256(b"x=1\n").hexdigest()
    assert got[str(odd)].sha256 == hashlib.sha256(b"[Mount]\n").hexdigest()
    assert me != 0 or got[str(plain)].owner == "root"


def test_status_monitors_from_status_files() -> None:
    cfg = config()
    now = 1_700_000_000
    ok = json.dumps({"epoch": now - 60, "exit": 0, "result": "ok", "last_ok": now - 60, "snapshots": ["abcdef1234"]})
    bad = json.dumps({"epoch": now - 60, "exit": 1, "result": "failed", "message": "boom", "step": "restore-files"})
    st = "/var/lib/homelab/storage"
    view = HostView(statuses={f"{st}/backup-web-nas.json": ok, f"{st}/drill-web-nas.json": bad},
                    append_only={"web-nas": "403"})
    mons = {(m.subject, m.name): m for m in storage_monitors(inputs(cfg, {"h2": view}), now, {})}
    assert mons[("web->nas", "backup")].health is Health.OK and "abcdef12" in mons[("web->nas", "backup")].reason
    assert mons[("web->nas", "drill")].health is Health.FAIL and "(at restore-files)" in mons[("web->nas", "drill")].reason
    assert mons[("web->nas", "check")].health is Health.WARN  # not come round yet: nothing proven, nothing broken
    assert mons[("h2->nas", "append-only")].health is Health.OK
    assert mons[("h2:/srv/homelab", "free space")].health is Health.UNKNOWN
    down = storage_monitors(inputs(cfg, {}), now, {"h2": "connection refused"})
    assert [(m.subject, m.health) for m in down] == [("web->nas", Health.UNKNOWN)]


def test_cli_commands_are_exact() -> None:
    job = cli.jobs(config(), "web", None)[0]
    assert cli.remote_command("run", job)[0] == (
        "systemctl start homelab-backup-web-nas.service; rc=$?; cat /var/lib/homelab/storage/backup-web-nas.json; exit $rc")
    assert cli.remote_command("list", job)[0] == (
        "timeout 120 /usr/local/lib/homelab/storage/restic-web-nas snapshots --json --host h2 --tag homelab")
    assert cli.remote_command("restore", job, "abc123", "/tmp/r")[0] == (
        "mkdir -p /tmp/r && timeout 3600 /usr/local/lib/homelab/storage/restic-web-nas restore abc123 --host h2 "
        "--tag homelab --target /tmp/r --verify")
    command, script = cli.remote_command("restore", job)
    assert command == "" and "systemctl stop web.service || true" in script and "rollback" in script
    assert cli.service_commands("wiki", ("db",))[2] == ("docker compose -p wiki ps --status running -q db | grep -q .",)
    with pytest.raises(Exception, match="no app 'nope'"):
        cli.jobs(config(), "nope", None)


def test_cli_summaries() -> None:
    job = cli.jobs(config(), "web", None)[0]
    ok = json.dumps({"result": "ok", "exit": 0, "snapshots": ["0123456789"]})
    assert cli.summarize("run", job, 0, ok) == (True, ["ok       web -> nas (h2), snapshots 01234567"])
    failed = json.dumps({"result": "failed", "exit": 1, "files": 3, "step": "compare", "message": "differ"})
    assert cli.summarize("drill", job, 1, failed) == (False, ["FAILED   web -> nas (h2), 3 files verified (stopped at compare): differ"])
    passed = json.dumps({"result": "ok", "exit": 0, "files": 1, "step": "done", "check": "2 tables, 3 rows"})
    assert cli.summarize("drill", job, 0, passed) == (True, ["ok       web -> nas (h2), 1 files verified, "
                                                             "scratch database: 2 tables, 3 rows"])
    # an app not backed up yet has no repository (restic exit 10): nothing to list, nothing wrong
    assert cli.summarize("list", job, 10, "") == (True, ["web -> nas (h2): 0 snapshots (no repository yet: "
                                                         "the first backup makes it)"])
    snaps = json.dumps([{"short_id": "ab12", "time": "2026-01-01T03:00:00.1Z", "tags": ["homelab", "files"], "paths": ["/srv/x"]}])
    assert cli.summarize("list", job, 0, snaps)[1] == ["web -> nas (h2): 1 snapshots",
                                                       "  ab12  2026-01-01T03:00:00  homelab,files  /srv/x"]


def test_the_dashboard_gets_a_storage_pane_from_the_registry() -> None:
    from homelab.events import LayerStatus
    from homelab.model import Monitor
    from homelab.tui.sources import EngineSource
    from homelab.tui.view_state import LayersKnown, RunView, reduce_all

    layers = EngineSource("c.yaml").layers()
    assert ("storage", 4) in [(li.name, li.number) for li in layers]
    mon = Monitor("storage", "web->nas", "backup", Health.FAIL, "no backup has run yet")
    view = reduce_all(RunView(), [LayersKnown(layers), LayerStatus("storage", (mon,))])
    pane = view.layer("storage")
    assert pane is not None and pane.health is Health.FAIL and pane.monitors == (mon,)


def test_the_engine_runs_a_destructive_host_change_only_with_confirm_delete(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_transport import FakeTransport

    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.events import ChangeFailed
    from homelab.hosts import HostTarget
    from homelab.layers.base import Layer, Observed, RunContext, RunOptions
    from homelab.model import Op

    class Formats(Layer):
        name = "storage"

        def contribute_hosts(self, ctx: RunContext) -> None:
            ctx.add_host(HostTarget("a", "127.0.0.1"))

        def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
            return LayerPlan("storage", (
                Change("storage", "a", "create", "disk d: erase ext4 and format", host="a", destructive=True,
                       ops=(Op("server.shell", {"commands": ["mkfs"]}),)),
                Change("storage", "a", "create", "directories: 1", host="a",
                       ops=(Op("files.directory", {"path": "/srv"}),))))

    monkeypatch.setattr("homelab.engine.all_layers", lambda: [Formats()])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("version: 1\n")
    for confirm, ran in ((False, ["files.directory"]), (True, ["server.shell", "files.directory"])):
        transport = FakeTransport()
        events = list(Engine(load_config(cfg), RunOptions(yes=True, confirm_destructive=confirm),
                             transport=transport).apply())
        assert [name for _, name, _ in transport.ran] == ran
        refused = [e for e in events if isinstance(e, ChangeFailed)]
        assert [e.change.summary for e in refused] == ([] if confirm else ["disk d: erase ext4 and format"])
        if not confirm:
            assert "--confirm-delete" in refused[0].hint


def test_the_wizard_step_writes_a_section_the_parser_reads() -> None:
    from homelab.tui.wizard.steps.storage import STEP
    from homelab.tui.wizard.yaml_text import emit

    answers = dict(STEP.defaults())
    assert STEP.render(answers) == ()  # no repository: no section
    answers["repositories"] = ({"name": "nas", "type": "rest", "machine": "h1", "target": "", "path": ""},)
    text = BASE.split("storage:")[0] + "\n".join(emit(STEP.render(answers))) + "\n"
    storage = parse_config(text, Path("/tmp/w.yaml")).get("storage")
    assert storage.repositories[0].machine == "h1" and storage.password.env == "RESTIC_PASSWORD"
    assert STEP.extra_problems({**answers, "password_source": "Xk29dLq81mZp0Qw7Rt5Yv3Bn6Cs4Df2G"})
