"""The wizard's config: rendered text (golden), read back identically, judged by the real parser."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from homelab.config import load_config
from homelab import registry
from homelab.config.schema import parse_config
from homelab.errors import ConfigError
from homelab.tui.screens.pick_names import pick_options
from homelab.tui.wizard.fields import join_names, split_names
from homelab.tui.wizard.render import render_config
from homelab.tui.wizard.step import field_paths
from homelab.tui.wizard.steps import active_steps
from homelab.tui.wizard.steps.compute import add_lab_machines, machine_choices
from homelab.tui.wizard.steps.privilege import looks_like_token
from homelab.tui.wizard.validate import check_config, describe
from homelab.tui.wizard.yaml_text import int_scalar, number_scalar, text_scalar

GOLDEN = Path(__file__).parent / "golden" / "wizard_config.yaml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJtVfzXGe3n9yw7mGw1Z6Hc0mI9wNh9a4bZ9hA0u5xO alice@laptop"

ANSWERS = {
    "billing": {"budget": "20", "currency": "EUR"},
    "privilege": {"ssh_key": "~/.ssh/homelab", "generate_key": True, "token_from": "command",
                  "token_source": "pass show hetzner"},
    "mesh": {"enabled": True, "cidr": "10.100.0.0/24", "port": "51820",
             "nodes": ({"name": "web-1", "endpoint": "auto"}, {"name": "pi-1", "endpoint": ""})},
    "permissions": {"users": ({"name": "alice", "key": KEY, "sudo": True}, {"name": "", "key": "", "sudo": True})},
    "compute": {"machines": ({"name": "pi-1", "address": "192.168.1.20", "user": "admin", "port": "22", "key": "",
                             "ipv6": "2001:db8::20"},),
                "hetzner.servers": ({"name": "web-1", "type": "cx22", "location": "fsn1"},),
                "base.timezone": "Europe/Berlin"},
}

HAND_WRITTEN = f"""
version: 1
billing: {{budget: 20, currency: EUR}}
privilege:
  ssh_key: ~/.ssh/homelab
  generate_key: true
  hcloud_token: {{command: pass show hetzner}}
mesh:
  cidr: 10.100.0.0/24
  port: 51820
  nodes: [{{name: web-1, endpoint: auto}}, {{name: pi-1}}]
permissions:
  users:
    - name: alice
      keys: ["{KEY}"]
      sudo: true
compute:
  machines: [{{name: pi-1, address: 192.168.1.20, user: admin, port: 22, ipv6: "2001:db8::20"}}]
  hetzner:
    servers: [{{name: web-1, type: cx22, location: fsn1}}]
  base: {{timezone: Europe/Berlin}}
"""


def test_every_built_section_has_its_step_in_run_order() -> None:
    steps = active_steps()
    assert [s.section for s in steps] == [e.id for e in registry.built() if e.step]
    # machines are asked for before the layers that name them (issue 12)
    sections = [s.section for s in steps]
    assert sections.index("compute") < sections.index("mesh") < sections.index("permissions")
    # a layer whose config parser exists but has no wizard step yet: add steps/<layer>.py
    assert {s.section for s in steps} == {e.id for e in registry.built()}


def test_rendered_config_matches_golden() -> None:
    text = render_config(ANSWERS, active_steps())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_wizard_config_parses_like_the_hand_written_one(tmp_path: Path) -> None:
    wizard = tmp_path / "wizard.yaml"
    wizard.write_text(render_config(ANSWERS, active_steps()))
    hand = tmp_path / "hand.yaml"
    hand.write_text(HAND_WRITTEN)
    a, b = load_config(wizard), load_config(hand)
    assert a.version == b.version
    assert a.sections == b.sections
    assert list(a.sections) == ["billing", "privilege", "mesh", "permissions", "compute"]


def test_blank_rows_and_disabled_mesh_are_not_written() -> None:
    answers = {**ANSWERS, "mesh": {**ANSWERS["mesh"], "enabled": False}}
    text = render_config(answers, active_steps())
    assert "\nmesh:" not in text and "name: \"\"" not in text
    cfg, problems = check_config(answers, active_steps())
    assert problems == [] and cfg is not None and cfg.get("mesh") is None


@pytest.mark.parametrize("typed, expected", [
    ({"billing": {"budget": "abc"}}, "billing.budget: should be a number >= 0, not 'abc'"),
    ({"mesh": {"port": "99999"}}, "mesh.port: should be an integer 1-65535, got 99999"),
    ({"compute": {"machines": ({"name": "Pi 1", "address": "10.0.0.2", "port": "22", "user": "root"},)}},
     "compute.machines[0].name: 'Pi 1' is not allowed here (hint: lowercase letters, digits and '-', like 'pi-1')"),
    ({"compute": {"machines": ({"name": "pi-1", "address": "10.0.0.2", "ipv6": "10.0.0.3"},)}},
     "compute.machines[0].ipv6: '10.0.0.3' is not an IPv6 address (hint: like 2001:db8::7 (the machine's IPv4 "
     "address or name goes in address))"),
])
def test_problems_are_worded_as_validate_words_them(typed: dict, expected: str, tmp_path: Path) -> None:
    _, problems = check_config(typed, active_steps())
    assert expected in [describe(p) for p in problems]
    # the same mistake typed by hand into a file: the same message from the same parser
    path = tmp_path / "config.yaml"
    path.write_text(render_config(typed, active_steps()))
    with pytest.raises(ConfigError) as err:
        parse_config(path.read_text(), path)
    assert any(line.endswith(expected) for line in err.value.render().splitlines())


def test_token_pasted_as_variable_name_is_refused() -> None:
    token = "aB3dEf9hIjK1mNoPqR5tUvWxYz0123456789ABCDEFGHIJKLmnopqrstuvwx12"
    assert looks_like_token(token) and not looks_like_token("HCLOUD_TOKEN")
    step = next(s for s in active_steps() if s.section == "privilege")
    assert step.extra_problems({"token_from": "env", "token_source": token})
    assert not step.extra_problems({"token_from": "env", "token_source": "HCLOUD_TOKEN"})


@pytest.mark.parametrize("fn, text, out", [
    (text_scalar, "pi-1", "pi-1"), (text_scalar, "yes", '"yes"'), (text_scalar, "a b", '"a b"'),
    (text_scalar, "x: y", '"x: y"'), (text_scalar, "~/.ssh/id", "~/.ssh/id"), (text_scalar, "#x", '"#x"'),
    (int_scalar, "22", "22"), (int_scalar, "2 2", '"2 2"'), (number_scalar, "12.5", "12.5"),
    (number_scalar, "abc", "abc"),
])
def test_scalars_read_back_as_typed(fn: object, text: str, out: str) -> None:
    assert fn(text) == out  # type: ignore[operator]


def test_lab_machines_are_added_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from homelab.tui.wizard import lab_machines

    inv = tmp_path / "4" / "inventory.json"
    inv.parent.mkdir()
    inv.write_text('{"ssh_key": "/var/lib/homelab-lab/4/id_ed25519", "hosts": ['
                   '{"name": "h1", "address": "10.44.0.2", "users": ["root", "admin"]},'
                   '{"name": "h2", "address": "10.44.0.3", "users": ["root"]}]}')
    monkeypatch.setattr(lab_machines, "LAB_ROOT", tmp_path)
    monkeypatch.setattr(lab_machines, "_inventory_from_api", lambda: None)
    monkeypatch.setenv("HOMELAB_LAB_INSTANCE", "4")
    once = add_lab_machines({"machines": ({"name": "h1", "address": "10.44.0.2"},)})
    assert [m["name"] for m in once["machines"]] == ["h1", "h2"]
    assert once["machines"][1] == {"name": "h2", "address": "10.44.0.3", "user": "root", "port": "22",
                                   "key": "/var/lib/homelab-lab/4/id_ed25519"}
    assert add_lab_machines(once) == once


def test_disks_alone_write_a_storage_section_the_parser_takes() -> None:
    disks = ({"name": "data", "machine": "web-1", "by_id": "", "volume.size_gb": "10", "mount": "/srv/homelab",
              "format": False},
             {"name": "usb", "machine": "pi-1", "by_id": "/dev/disk/by-id/usb-X_1", "volume.size_gb": "",
              "mount": "/srv/usb", "format": True},
             {"name": "", "machine": "", "by_id": "", "volume.size_gb": "", "mount": "/srv/homelab", "format": False})
    answers = {**ANSWERS, "storage": {"disks": disks}}
    text = render_config(answers, active_steps())
    assert text.split("storage:\n", 1)[1].splitlines()[1:8] == [
        "  disks:", "    - name: data", "      machine: web-1", "      volume:", "        size_gb: 10",
        "      mount: /srv/homelab", "      format: false"]
    cfg, problems = check_config(answers, active_steps())
    assert problems == [] and cfg is not None
    data, usb = cfg.get("storage").disks  # the blank row is not written
    assert data.volume is not None and data.volume.size_gb == 10 and data.by_id is None
    assert usb.by_id == "/dev/disk/by-id/usb-X_1" and usb.format and usb.volume is None


TWO = {"compute": {"machines": ({"name": "pi-1", "address": "10.0.0.2"}, {"name": "pi-2", "address": "10.0.0.3"}),
                   "hetzner.servers": ({"name": "web-1", "type": "cx22", "location": "fsn1"},)},
       "mesh": {"enabled": False}}


def with_app(machine: str, recipe: str = "whoami") -> dict:
    return {**TWO, "apps": {"list": ({"name": "hello", "recipe": recipe, "machine": machine},)}}


@pytest.mark.parametrize("typed, written, machines", [
    ("pi-1", "machine: pi-1", ("pi-1",)),
    ("pi-1, pi-2", "machines: [pi-1, pi-2]", ("pi-1", "pi-2")),
    ("  pi-2 ,web-1  ", "machines: [pi-2, web-1]", ("pi-2", "web-1")),  # as typed: commas or spaces
    ("pi-1 pi-2", "machines: [pi-1, pi-2]", ("pi-1", "pi-2")),
])
def test_an_apps_machines_are_one_machine_key_or_a_machines_list(typed: str, written: str,
                                                                 machines: tuple[str, ...]) -> None:
    text = render_config(with_app(typed), active_steps())
    assert text.split("apps:\n", 1)[1].splitlines()[1:5] == [
        "  list:", "    - name: hello", "      recipe: whoami", f"      {written}"]
    cfg, problems = check_config(with_app(typed), active_steps())
    assert problems == [] and cfg is not None
    assert cfg.get("apps").app("hello").machines == machines


@pytest.mark.parametrize("typed, expected", [
    ("", "apps.list[0].machine: is required"),
    ("pi-3", "apps.list[0].machine: no machine or server named 'pi-3' (hint: did you mean 'pi-2'?)"),
    ("pi-1, pi-3", "apps.list[0].machines[1]: no machine or server named 'pi-3' (hint: did you mean 'pi-2'?)"),
    ("pi-1, pi-1", "apps.list[0].machines: names pi-1 twice (hint: one copy per machine)"),
])
def test_an_apps_machines_are_judged_by_the_parser(typed: str, expected: str) -> None:
    _, problems = check_config(with_app(typed), active_steps())
    assert [describe(p) for p in problems] == [expected]


def test_a_stateful_app_on_two_machines_is_the_parsers_refusal_on_the_machines_field() -> None:
    _, problems = check_config(with_app("pi-1, pi-2", "radicale"), active_steps())
    (p,) = problems
    assert p.path == "apps.list[0].machines" and "two copies of it are not a cluster" in p.message
    step = next(s for s in active_steps() if s.section == "apps")
    field = step.fields[0].item_fields[2]  # type: ignore[union-attr]
    # the row's machines control answers for machine, machines and machines[i] alike
    assert field_paths("apps", step.fields[0], 0, field) == ("apps.list[0].machine", "apps.list[0].machines")


def test_the_pick_list_offers_the_machines_steps_machines_and_servers_and_keeps_typed_names() -> None:
    assert machine_choices(TWO) == (("pi-1  (machine, 10.0.0.2)", "pi-1"), ("pi-2  (machine, 10.0.0.3)", "pi-2"),
                                    ("web-1  (Hetzner server, cx22)", "web-1"))
    assert machine_choices({}) == ()
    assert pick_options(machine_choices(TWO)[:2], ("pi-2", "old")) == [
        ("pi-1  (machine, 10.0.0.2)", "pi-1", False), ("pi-2  (machine, 10.0.0.3)", "pi-2", True),
        ("old  (not in the machines step)", "old", True)]
    assert (split_names(" a,b  c ,"), join_names(("a", "b"))) == (("a", "b", "c"), "a, b")
