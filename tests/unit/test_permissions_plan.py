"""The permissions diff: fresh host, convergence, removals, lockout guards, port moves."""
from __future__ import annotations

import dataclasses

from homelab.layers.permissions.plan import (
    Login, create_user_command, install_sudoers_command, plan_host, remove_user_commands, unlock_user_command,
)
from homelab.layers.permissions.probes import Account, FileState
from homelab.layers.permissions.sshd import KEYS_DIR, render_sshd_dropin
from homelab.provision.guard import token
from homelab.model import Change
from test_permissions_fixtures import (
    ALICE, BASE, BOB, OPERATOR, mesh_claims, converged, fresh_view, inputs, perms,
)

ECDSA_HOST_KEY = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDFQr1uo"


def summaries(changes: tuple[Change, ...]) -> list[str]:
    return [c.summary for c in changes]


def op_names(change: Change) -> list[str]:
    return [op.name for op in change.ops]


def test_fresh_host_gets_everything_in_a_safe_order() -> None:
    cfg = perms()
    plan = plan_host(cfg, inputs(), fresh_view())
    assert plan.notes == ("web-1: nftables, unattended-upgrades not installed yet (compute's package step installs them)",)
    assert summaries(plan.changes) == [
        "homelab-guard: install (sshd and firewall changes revert unless a new login confirms them)",
        "user alice: create, keys: 2, + ed25519 alice@laptop, ed25519 homelab-operator, sudo",
        "user bob: create, keys: 1, + ed25519 bob@desk",
        "sshd: harden (OpenSSH 10.0): root login off, password login off, port 22; kept only if a new login as "
        "alice works within 90 s",
        "firewall: new rules: inbound default deny, sshd 22; kept only if a new login works within 90 s",
        "firewall: load at boot (homelab-firewall.service)",
        "unattended-upgrades: security updates every day (/etc/apt/apt.conf.d/20auto-upgrades)",
    ]
    assert all(c.host == "web-1" and c.layer == "permissions" for c in plan.changes)
    alice, sshd = plan.changes[1], plan.changes[3]
    assert op_names(alice) == ["server.shell", "files.directory", "files.put_text", "files.put_text", "server.shell"]
    keys = alice.ops[2].kwargs
    assert keys["dest"] == f"{KEYS_DIR}/alice" and keys["mode"] == "644" and keys["user"] == "root"
    assert keys["content"].splitlines()[1:] == [ALICE, OPERATOR]  # the operator key is added by itself
    assert alice.ops[3].kwargs["dest"] == "/var/lib/homelab/staging/sudoers-alice"
    assert op_names(sshd) == ["files.put_text", "homelab.guarded_apply"]
    spec = sshd.ops[1].kwargs["spec"]
    assert spec["users"] == ["alice"] and spec["fallback"] == ["alice", "admin"] and spec["port"] == 22
    assert spec["host_key"].startswith("ssh-ed25519 ") and spec["key_path"] == "/home/me/.ssh/id_ed25519"
    assert spec["kind"] == "sshd" and spec["window"] == 90
    assert "+PermitRootLogin no" in sshd.detail
    # the login switches to alice once her user and the sshd drop-in are in place
    assert plan.login == Login("alice", 22, "/home/me/.ssh/id_ed25519")
    assert plan.switch_after == (alice, sshd)
    assert plan.managed == ("alice", "bob") and not plan.warnings


def test_converged_host_needs_nothing_debian13_and_12() -> None:
    cfg = perms()
    for version in ((10, 0), (9, 2)):
        inp = inputs()
        plan = plan_host(cfg, inp, converged(cfg, inp, fresh_view(version)))
        assert plan.changes == (), summaries(plan.changes)
        assert "web-1: sshd hardened (/etc/ssh/sshd_config.d/10-homelab.conf)" in plan.unchanged
        assert "web-1: firewall loaded (table inet homelab, policy drop)" in plan.unchanged


def test_converged_with_mesh_claims_and_no_ingress() -> None:
    cfg = perms()
    inp = inputs(host="pi-1", claims=mesh_claims())
    plan = plan_host(cfg, inp, fresh_view())
    fw = next(c for c in plan.changes if c.summary.startswith("firewall: new rules"))
    text = fw.ops[0].kwargs["content"]
    assert 'iifname "wg0" accept' in text and "51820" not in text and "{ 80, 443 }" not in text
    assert plan_host(cfg, inp, converged(cfg, inp, fresh_view())).changes == ()


def test_firewall_drift_is_reloaded_with_the_same_file() -> None:
    cfg = perms()
    inp = inputs()
    view = dataclasses.replace(converged(cfg, inp, fresh_view()), nft_same=False)
    plan = plan_host(cfg, inp, view)
    assert summaries(plan.changes) == ["firewall: rules differ from the file: inbound default deny, sshd 22; kept only "
                                       "if a new login works within 90 s"]
    gone = dataclasses.replace(view, nft_loaded=False)
    assert summaries(plan_host(cfg, inp, gone).changes)[0].startswith("firewall: not loaded")


def test_user_dropped_from_config_loses_access() -> None:
    cfg = perms()
    inp = inputs(managed=("alice", "bob", "carol"))
    view = converged(cfg, inputs(), fresh_view(users=("alice", "bob", "carol", "root")))
    view = dataclasses.replace(view, accounts={**view.accounts, "carol": Account("carol", True, "/bin/bash")},
                               keys={**view.keys, "carol": FileState(True, "x", "")}, sudoers={**view.sudoers,
                                                                                               "carol": "y"})
    plan = plan_host(cfg, inp, view)
    assert len(plan.changes) == 1
    c = plan.changes[0]
    assert c.action == "delete" and c.summary.startswith("user carol: removed from the config")
    assert c.ops[0].kwargs["commands"] == remove_user_commands("carol", True) == [
        "rm -f /etc/sudoers.d/homelab-carol /etc/ssh/homelab-keys/carol",
        "usermod --expiredate 1 --shell /usr/sbin/nologin carol",
        "pkill -KILL -u carol || [ $? -eq 1 ]",
    ]
    assert plan.removals == (("carol", c),) and "carol" in plan.managed
    # once locked: nothing more to do, and converged() models exactly that
    assert plan_host(cfg, inp, converged(cfg, inp, view)).changes == ()


def test_removing_the_user_homelab_is_logged_in_as_waits_for_the_next_apply() -> None:
    cfg = perms()
    inp = inputs(user="carol", managed=("alice", "carol"))
    view = converged(cfg, inputs(), fresh_view(users=("alice", "bob", "carol", "root")))
    view = dataclasses.replace(view, accounts={**view.accounts, "carol": Account("carol", True, "/bin/bash")})
    plan = plan_host(cfg, inp, view)
    assert plan.changes == ()
    assert plan.warnings == ("web-1: user carol left the config, but homelab is logged in as carol; its access is "
                             "removed on the next apply (homelab logs in as alice from now on)",)
    assert plan.managed == ("alice", "bob", "carol") and plan.login is not None and plan.login.user == "alice"


def test_user_back_in_config_is_unlocked() -> None:
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    view = dataclasses.replace(view, accounts={**view.accounts, "bob": Account("bob", True, "/usr/sbin/nologin", 1)})
    plan = plan_host(cfg, inp, view)
    assert summaries(plan.changes) == ["user bob: unlock (was removed before)"]
    assert plan.changes[0].ops[0].kwargs["commands"] == [unlock_user_command("bob")]
    assert unlock_user_command("bob") == "usermod --expiredate '' --shell /bin/bash bob"


def test_key_and_sudo_changes_are_exact() -> None:
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    more = perms(BASE.replace(f'keys: ["{BOB}"]', f'keys: ["{BOB}", "{ALICE}"]\n      sudo: true'))
    plan = plan_host(more, inp, view)
    assert summaries(plan.changes) == ["user bob: keys: 2, + ed25519 alice@laptop, sudo"]
    fewer = perms(BASE.replace(f'keys: ["{ALICE}"]', "keys: []"))
    assert summaries(plan_host(fewer, inp, view).changes) == ["user alice: keys: 1, - 1"]
    view2 = dataclasses.replace(view, sudoers={**view.sudoers, "bob": "abc"})
    plan = plan_host(cfg, inp, view2)
    assert summaries(plan.changes) == ["user bob: no sudo"]
    assert plan.changes[0].ops[0].kwargs["commands"] == ["rm -f /etc/sudoers.d/homelab-bob"]


def test_command_builders_quote_and_check() -> None:
    assert create_user_command("alice") == (
        "if getent group alice >/dev/null; then useradd --create-home --shell /bin/bash --gid alice alice; "
        "else useradd --create-home --shell /bin/bash alice; fi")
    assert install_sudoers_command("alice") == (
        "visudo -cqf /var/lib/homelab/staging/sudoers-alice && cp /var/lib/homelab/staging/sudoers-alice "
        "/etc/sudoers.d/.homelab-alice.tmp && chmod 0440 /etc/sudoers.d/.homelab-alice.tmp && "
        "mv -f /etc/sudoers.d/.homelab-alice.tmp /etc/sudoers.d/homelab-alice")


def test_pinned_non_ed25519_host_key_leaves_sshd_alone() -> None:
    cfg = perms()
    plan = plan_host(cfg, inputs(host_key=ECDSA_HOST_KEY), fresh_view())
    assert not any(c.summary.startswith("sshd:") for c in plan.changes)
    assert any("the pinned host key is ecdsa-sha2-nistp256" in w for w in plan.warnings)
    assert plan.login is None  # alice's keys are read only through our drop-in


def test_unknown_operator_key_keeps_homelabs_way_in() -> None:
    plan = plan_host(perms(), inputs(operator_key=None), fresh_view())
    assert not any(c.summary.startswith("sshd:") for c in plan.changes)
    assert plan.login is None and any("operator public key is unknown" in w for w in plan.warnings)


def test_no_operator_and_a_non_root_login_user_leaves_sshd_alone() -> None:
    cfg = perms(BASE.replace("      sudo: true\n", "")
                .replace("  firewall:", "  sshd: {root_login: true}\n  firewall:"))
    plan = plan_host(cfg, inputs(user="admin"), fresh_view())
    assert not any(c.summary.startswith("sshd:") for c in plan.changes)
    assert any("add admin to permissions.users" in w for w in plan.warnings)
    # logged in as root: root keeps the operator key, in the managed key file
    plan = plan_host(cfg, inputs(user="root"), fresh_view())
    root = next(c for c in plan.changes if c.summary.startswith("root:"))
    assert root.ops[0].kwargs["dest"] == f"{KEYS_DIR}/root" and OPERATOR in root.ops[0].kwargs["content"]
    assert plan.login == Login("root", 22, "/home/me/.ssh/id_ed25519")


def test_sshd_port_move_opens_the_new_port_first_and_switches_the_login_port() -> None:
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    moved = perms(BASE.replace("  firewall:", "  sshd: {port: 2222}\n  firewall:"))
    plan = plan_host(moved, inp, view)
    assert [c.summary.split(":")[0] for c in plan.changes] == ["firewall", "sshd", "firewall"]
    opening, sshd, final = plan.changes
    assert "open port 2222 while sshd moves there" in opening.summary
    assert "tcp dport { 22, 2222 } accept" in opening.ops[0].kwargs["content"]
    assert opening.ops[1].kwargs["spec"]["port"] == 22
    assert sshd.ops[1].kwargs["spec"]["port"] == 2222 and sshd.ops[1].kwargs["spec"]["fallback_port"] == 22
    assert "tcp dport 2222 accept" in final.ops[0].kwargs["content"]
    assert plan.login == Login("alice", 2222, "/home/me/.ssh/id_ed25519")
    # after the move (homelab connects on 2222): converged
    inp2 = inputs(port=2222, user="alice")
    assert plan_host(moved, inp2, converged(moved, inp2, view)).changes == ()


def test_sshd_port_move_through_a_forwarded_port_is_refused() -> None:
    moved = perms(BASE.replace("  firewall:", "  sshd: {port: 2222}\n  firewall:"))
    plan = plan_host(moved, inputs(port=2200), fresh_view())
    assert not any(c.summary.startswith("sshd:") for c in plan.changes)
    assert any("homelab reaches it on port 2200 (forwarded?)" in w for w in plan.warnings)


def test_disabled_firewall_is_unloaded() -> None:
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    off = perms(BASE.replace("  firewall:\n", "  firewall:\n    enabled: false\n"))
    plan = plan_host(off, inp, view)
    assert summaries(plan.changes) == ["firewall: firewall disabled in the config: unload table inet homelab"]
    assert plan_host(off, inp, converged(off, inp, view)).changes == ()


def test_host_not_created_yet_plans_everything() -> None:
    from homelab.layers.permissions.probes import HostView

    plan = plan_host(perms(), inputs(host_key=""), HostView(reachable=False))
    assert "sudo, nftables, unattended-upgrades not installed yet" in plan.notes[0]
    assert any("OpenSSH 10.0 assumed" in s for s in summaries(plan.changes))


def test_sshd_on_probation_is_not_converged() -> None:
    """An apply died between arming the sshd change and the new login that confirms it: the
    drop-in matches, but the host will undo it — plan says so and apply tries (and confirms) again."""
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    dropin = render_sshd_dropin(cfg.sshd, (10, 0))
    pending = dataclasses.replace(view, guard={**view.guard, "sshd": f"pending {token(dropin)}"})
    plan = plan_host(cfg, inp, pending)
    assert [c.summary.split(":")[0] for c in plan.changes] == ["sshd"]
    sshd = plan.changes[0]
    assert sshd.summary.startswith("sshd: on probation, never confirmed (an earlier apply stopped before its new "
                                   "login; the host would undo it): try again and confirm: harden")
    assert op_names(sshd) == ["files.put_text", "homelab.guarded_apply"]
    assert sshd.ops[1].kwargs["spec"]["token"] == token(dropin)
    for settled in (f"confirmed {token(dropin)}", "none", f"reverted {token('older')}"):
        done = dataclasses.replace(view, guard={**view.guard, "sshd": settled})
        assert plan_host(cfg, inp, done).changes == (), settled


def test_masked_or_disabled_update_timers_are_enabled() -> None:
    cfg = perms()
    inp = inputs()
    view = converged(cfg, inp, fresh_view())
    stopped = dataclasses.replace(view, upgrades={**view.upgrades, "timer": "disabled inactive",
                                                  "dltimer": "disabled inactive"})
    plan = plan_host(cfg, inp, stopped)
    assert summaries(plan.changes) == ["unattended-upgrades: enable apt's update timers (apt-daily.timer is disabled "
                                       "inactive; apt-daily-upgrade.timer is disabled inactive)"]
    assert plan.changes[0].ops[0].kwargs["commands"] == [
        "systemctl enable --now apt-daily.timer apt-daily-upgrade.timer"]
    # masked is someone's explicit choice: not overridden, but the plan says why updates will not run
    masked = dataclasses.replace(view, upgrades={**view.upgrades, "timer": "masked inactive"})
    plan = plan_host(cfg, inp, masked)
    assert plan.changes == () and plan.warnings == (
        "web-1: apt-daily-upgrade.timer masked: unattended upgrades never run there; homelab leaves a masked unit "
        "alone (`systemctl unmask` it, or set permissions.unattended_upgrades: false)",)
    off = perms(BASE.replace("  firewall:", "  unattended_upgrades: false\n  firewall:"))
    assert not off.unattended_upgrades
    assert plan_host(off, inp, stopped).changes == ()  # not asked for: left alone
