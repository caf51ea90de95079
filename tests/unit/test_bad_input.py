"""Bad input: values that look valid but are not, refused with the exact message and position."""
from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from homelab.config import parse_config
from homelab.config.permissions import check_public_key, count_keys
from homelab.config.yamlpos import MAX_BYTES, MAX_DEPTH, read_config_file, show
from homelab.errors import ConfigError, UsageError

TOKEN = "abcdefghij0123456789abcdefghij0123456789abcdefghij0123456789abcd"  # stand-in for a pasted API token


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def new_key(comment: str = "me@laptop") -> str:
    pub = ed25519.Ed25519PrivateKey.generate().public_key()
    return pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " " + comment


def machines(*lines: str) -> str:
    return "compute:\n  machines:\n" + "".join(f"    - {line}\n" for line in lines)


# ------------------------------------------------------------ addresses ------
@pytest.mark.parametrize("address,message", [
    ("300.1.2.3", "'300.1.2.3' is not a valid IPv4 address"),
    ("10.0.0.256", "'10.0.0.256' is not a valid IPv4 address"),
    ("1.2.3", "'1.2.3' is not a valid IPv4 address"),
    ("nas.42", "'nas.42' is not a valid IPv4 address"),
    ("'fe80::zz'", "'fe80::zz' is not a valid IPv6 address"),
    ("'a b'", "'a b' is not an IP address or host name"),
])
def test_addresses_that_do_not_parse(address: str, message: str) -> None:
    assert problems(machines(f"{{name: a, address: {address}}}")) == [
        f"c.yaml:3:26: compute.machines[0].address: {message} "
        "(hint: like 192.168.1.20 (four numbers 0-255), 2001:db8::7 or nas.home.arpa)"]


def test_good_addresses_still_pass() -> None:
    cfg = parse_config(machines("{name: a, address: 192.168.1.20}", "{name: b, address: '2001:db8::7'}",
                                "{name: c, address: nas.home.arpa}", "{name: d, address: pi-1}"), Path("c.yaml"))
    assert [m.address for m in cfg.machines] == ["192.168.1.20", "2001:db8::7", "nas.home.arpa", "pi-1"]


def test_mesh_endpoint_address_is_checked_too() -> None:
    text = machines("{name: a, address: 10.0.0.1}") + "mesh:\n  nodes:\n    - {name: a, endpoint: 999.1.1.1}\n"
    assert problems(text)[0].startswith(
        "c.yaml:6:27: mesh.nodes[0].endpoint: '999.1.1.1' is not a valid IPv4 address")


def test_two_machines_with_one_login() -> None:
    got = problems(machines("{name: a, address: '2001:db8::1'}", "{name: b, address: '2001:DB8:0::1', port: 22}"))
    assert got == ["c.yaml:4:26: compute.machines[1].address: root@2001:DB8:0::1 port 22 is already machine 'a' "
                   "(compute.machines[0]) (hint: one machine, one entry: remove the copy or fix its address, "
                   "port or user)"]
    assert problems(machines("{name: a, address: NAS.home}", "{name: b, address: nas.home}"))[0].startswith(
        "c.yaml:4:26: compute.machines[1].address: root@nas.home port 22 is already machine 'a'")
    # the same address with another port or user is another login (e.g. two containers behind one IP)
    parse_config(machines("{name: a, address: 10.0.0.1}", "{name: b, address: 10.0.0.1, port: 2222}",
                          "{name: c, address: 10.0.0.1, user: admin}"), Path("c.yaml"))


# ------------------------------------------------------------ numbers --------
@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", ".Inf"])
def test_nan_and_infinities_are_refused_wherever_they_appear(value: str) -> None:
    col = len("  budget: ") + 1
    assert problems(f"billing:\n  budget: {value}\n") == [
        f"c.yaml:2:{col}: {value} is not a usable number (infinite and not-a-number values are refused) "
        "(hint: write a plain number like 10 or 2.5)"]
    # also in places that would turn them into text (a label value)
    text = f"compute:\n  hetzner:\n    servers:\n      - {{name: w, type: cx22, location: fsn1, labels: {{x: {value}}}}}\n"
    assert f"{value} is not a usable number" in problems(text)[0]


def test_version_speaks_the_configs_language() -> None:
    assert problems("version: 1-1\n") == ["c.yaml:1:10: version: should be 1, not a string ('1-1')"]
    assert problems("version: true\n") == ["c.yaml:1:10: version: should be 1, not true/false"]
    assert problems("version: 2\n") == ["c.yaml:1:10: version: should be 1, got 2"]
    assert problems("billing: {budget: yes}\n") == ["c.yaml:1:19: billing.budget: should be a number >= 0, "
                                                    "not true/false"]


def test_messages_never_use_python_words() -> None:
    texts = ["version: [1]\n", "billing: {budget: ~}\ncompute: 3\n", "compute: {machines: [{name: true}]}\n",
             "permissions: {sshd: {port: 1.5}}\n", "1: x\n", "on: x\n", "compute: {machines: [{name: a, address: 7}]}\n"]
    for text in texts:
        for line in problems(text):
            for word in ("NoneType", "True", "False", "bool", "int'", "float", "dict", "str'"):
                assert word not in line, (text, line)


def test_keys_are_names_as_written() -> None:
    # YAML 1.1 makes `on:` a boolean and `1:` a number; as keys they are just (unknown) names
    assert problems("on: x\n")[0].startswith("c.yaml:1:1: on: unknown key")
    assert problems("1: x\n")[0].startswith("c.yaml:1:1: 1: unknown key")


def test_long_values_are_shortened() -> None:
    name = "a" * 300
    got = problems(machines(f"{{name: {name}, address: 10.0.0.1}}"))
    assert got == [f"c.yaml:3:14: compute.machines[0].name: '{'a' * 40}'… (300 characters) is not allowed here "
                   "(hint: lowercase letters, digits and '-', like 'pi-1')"]
    assert show("x" * 41) == f"'{'x' * 40}'… (41 characters)" and show("short") == "'short'"
    assert show(True) == "true" and show(None) == "empty" and show(12) == "12"


# ------------------------------------------------------------ time zones -----
def test_time_zone_not_in_the_database() -> None:
    assert problems("compute:\n  base:\n    timezone: Mars/Olympus\n") == [
        "c.yaml:3:15: compute.base.timezone: 'Mars/Olympus' is not in the time zone database "
        "(hint: an IANA zone like Europe/Berlin (see timedatectl list-timezones))"]
    assert problems("compute:\n  base:\n    timezone: Europe/Berln\n") == [
        "c.yaml:3:15: compute.base.timezone: 'Europe/Berln' is not in the time zone database "
        "(hint: did you mean 'Europe/Berlin'?)"]
    cfg = parse_config("compute:\n  base:\n    timezone: America/Argentina/Buenos_Aires\n", Path("c.yaml"))
    assert cfg.compute.base.timezone == "America/Argentina/Buenos_Aires"


# ------------------------------------------------------------ mesh range -----
def test_mesh_range_holding_a_machine() -> None:
    text = machines("{name: pi, address: 192.168.1.5}", "{name: web, address: web.example.com}") + \
        "mesh:\n  cidr: 192.168.0.0/16\n"
    assert problems(text) == [
        "c.yaml:6:9: mesh.cidr: 192.168.0.0/16 holds the address of machine 'pi' (192.168.1.5) "
        "(hint: pick a range no network of yours uses, e.g. 10.100.0.0/16)"]


def test_mesh_range_overlapping_a_machines_lan() -> None:
    text = machines("{name: pi, address: 10.100.0.200}", "{name: web, address: web.example.com}") + \
        "mesh:\n  cidr: 10.100.0.0/25\n"
    assert problems(text) == [
        "c.yaml:6:9: mesh.cidr: 10.100.0.0/25 overlaps 10.100.0.0/24, the network of machine 'pi' "
        "(10.100.0.200, taken as a /24) (hint: pick a range no network of yours uses, e.g. 10.101.0.0/25)"]


def test_default_mesh_range_clash_points_at_the_mesh_section() -> None:
    text = machines("{name: pi, address: 10.100.0.9}", "{name: web, address: web.example.com}") + "mesh: {port: 51820}\n"
    assert problems(text)[0].startswith("c.yaml:5:7: mesh.cidr: 10.100.0.0/24 holds the address of machine 'pi'")


FIREWALL = """\
permissions:
  sshd: {{root_login: true}}
  firewall:
    allow:
      - {{port: 9100, from: {source}}}
"""


def test_firewall_network_that_contains_the_mesh() -> None:
    text = machines("{name: web, address: web.example.com}") + "mesh: {cidr: 10.100.0.0/24}\n" + \
        FIREWALL.format(source="10.0.0.0/8")
    assert problems(text) == [
        "c.yaml:9:28: permissions.firewall.allow[0].from: 10.0.0.0/8 also contains the mesh range 10.100.0.0/24, "
        "so every mesh node would be let in too (hint: narrow the rule, or move the mesh (e.g. mesh.cidr: "
        "172.16.0.0/24); to let mesh nodes in, write from: 10.100.0.0/24)"]


def test_firewall_rule_for_the_mesh_itself_is_fine() -> None:
    for source in ("10.100.0.0/24", "10.100.0.7/32", "192.168.1.0/24", "'2001:db8::/32'"):
        text = machines("{name: web, address: web.example.com}") + "mesh: {cidr: 10.100.0.0/24}\n" + \
            FIREWALL.format(source=source)
        parse_config(text, Path("c.yaml"))


# ------------------------------------------------------------ ssh keys -------
USER = """\
permissions:
  users:
    - name: alice
      sudo: true
      keys: [{key}]
"""


def test_key_data_that_does_not_parse_as_a_key() -> None:
    good = new_key()
    kind, b64, _ = good.split()
    blob = bytearray(base64.b64decode(b64))
    del blob[-1]  # 31 bytes of ed25519 key: the fields line up, the key does not
    blob[18] = 31
    bad = f"{kind} {base64.b64encode(bytes(blob)).decode()}"
    assert check_public_key(bad) == "has ssh-ed25519 key data that is not a valid key (cut short or altered?)"
    assert problems(USER.format(key=f"'{bad}'")) == [
        "c.yaml:5:14: permissions.users[0].keys[0]: has ssh-ed25519 key data that is not a valid key "
        "(cut short or altered?) (hint: paste the whole line of the .pub file, e.g. ~/.ssh/id_ed25519.pub)"]
    assert check_public_key(good) is None


@pytest.mark.parametrize("key_bytes,extra", [(32, []), (31, []), (33, []), (0, []), (32, [b"x"]), (None, [])])
def test_ed25519_check_agrees_with_cryptography(key_bytes: int | None, extra: list[bytes]) -> None:
    """ed25519 keys are checked without importing cryptography (start-up); the verdict must be its verdict."""
    parts = [b"ssh-ed25519", *([] if key_bytes is None else [os.urandom(key_bytes)]), *extra]
    blob = b"".join(len(p).to_bytes(4, "big") + p for p in parts)
    line = f"ssh-ed25519 {base64.b64encode(blob).decode()}"
    try:
        serialization.load_ssh_public_key(line.encode())
        theirs = True
    except ValueError:
        theirs = False
    assert (check_public_key(line) is None) == theirs
    assert theirs == (key_bytes == 32 and not extra)


def test_two_keys_in_one_string() -> None:
    one, two = new_key("a"), new_key("b")
    for text in (f"'{one} {two}'", f'"{one}\\n{two}"', f"'{one} {two.split()[1]}'"):
        assert problems(USER.format(key=text)) == [
            "c.yaml:5:14: permissions.users[0].keys[0]: holds 2 keys in one string "
            "(hint: list each key as its own item under keys:)"], text
    assert count_keys(one) == 1


def test_a_bad_key_is_the_only_error_not_a_missing_sudo_user() -> None:
    # the sudo user's entry is broken: "one user needs sudo" would be a follow-on, not the cause
    got = problems(USER.format(key="'ssh-ed25519 AAAA'"))
    assert len(got) == 1 and "permissions.users[0].keys[0]" in got[0]


# ------------------------------------------------------------ tokens ---------
@pytest.mark.parametrize("token", [TOKEN, TOKEN.upper(), "ghp_" + TOKEN[:36], TOKEN + "-x", "hc-" + TOKEN])
def test_token_pasted_as_variable_name_is_never_echoed(token: str) -> None:
    got = problems(f"privilege:\n  hcloud_token: {{env: {token}}}\n")
    assert got == ["c.yaml:2:23: privilege.hcloud_token.env: this looks like a token, not the name of a variable "
                   "(hint: write the variable's name (e.g. HCLOUD_TOKEN) and export the token in it; if it is a "
                   "real token, revoke it: it was written to this file)"]
    assert token not in "".join(got) and token[:12] not in "".join(got)


def test_bad_variable_name_is_not_echoed_either() -> None:
    got = problems("privilege:\n  hcloud_token: {env: 'my token!'}\n")
    assert got == ["c.yaml:2:23: privilege.hcloud_token.env: should be the name of an environment variable "
                   "(hint: letters, digits and '_', not starting with a digit, like HCLOUD_TOKEN)"]
    for name in ("HCLOUD_TOKEN", "HCLOUD_TOKEN_PROD", "hcloud_token", "TOKEN_2"):
        parse_config(f"privilege:\n  hcloud_token: {{env: {name}}}\n", Path("c.yaml"))


# ------------------------------------------------------------ the file -------
@pytest.mark.parametrize("text,what", [("", "is empty"), ("\n\n", "is empty"), ("# a\n# b\n", "has only comments"),
                                       ("---\n", "has only comments"), ("~\n", "has only comments")])
def test_empty_file_says_how_to_start(text: str, what: str) -> None:
    assert problems(text) == [f"c.yaml:1:1: the file {what}: there is nothing to set up (hint: start from "
                              "config.example.yaml, or run `homelab` on a terminal: its wizard writes one)"]


def test_a_file_that_is_not_a_mapping_says_what_a_config_looks_like() -> None:
    hint = "(hint: a config is sections like `compute:` at the start of a line (see config.example.yaml))"
    assert problems("- compute\n") == [f"c.yaml:1:1: should be a mapping, not a list {hint}"]
    assert problems("compute\n") == [f"c.yaml:1:1: should be a mapping, not a string {hint}"]


def test_yaml_errors_point_where_the_problem_starts() -> None:
    # an unclosed quote: the line where it opens, not the end of the file
    text = "compute:\n  base:\n    timezone: \"Europe/Berlin\n    packages: [jq]\nprivilege: {}\n"
    assert problems(text) == ["c.yaml:3:15: YAML syntax: this quoted value is never closed "
                              "(hint: add the closing quote, or remove the stray one)"]
    assert problems("compute:\n  machines: [\n    {name: a}\nbilling: {}\n") == [
        "c.yaml:2:13: YAML syntax: the [ here is not closed where expected (line 4) "
        "(hint: close it with ], or put a comma between items)"]
    assert problems("compute:\n\tmachines: []\n") == [
        "c.yaml:2:1: YAML syntax: a tab character; YAML indents with spaces only (hint: replace tabs with spaces)"]
    assert problems("compute:\n  machines: []\n  base\n  x: 1\n") == [
        "c.yaml:3:3: YAML syntax: this line is neither `key: value` nor a list item `- ...` "
        "(hint: add ': ' after the key, or check the indentation)"]
    assert problems("compute:\n  machines: []\n base: {}\n") == [
        "c.yaml:3:2: YAML syntax: the indentation does not match the lines above (the block begins at line 1) "
        "(hint: keys of one mapping, and the '-' of one list, line up in one column)"]
    assert problems("billing: budget: 3\n") == [
        "c.yaml:1:16: YAML syntax: a ':' where a value was expected (hint: quote the value if it contains ': ')"]
    assert problems("a: 1\n---\nb: 2\n") == [
        "c.yaml:2:1: YAML syntax: a second YAML document ('---'); a config is one document "
        "(hint: remove the second '---' part)"]
    assert problems("billing: {budget: \x01}\n") == [
        "c.yaml:1:19: a control character (#x0001) is not allowed (hint: remove it; is this a text file?)"]


def test_tags_and_dates_in_the_configs_words() -> None:
    assert problems("version: !!int abc\n") == [
        "c.yaml:1:10: 'abc' cannot be read as !!int (hint: drop the tag, or fix the value)"]
    assert problems("compute: {machines: [{name: 2024-01-01}]}\n") == [
        "c.yaml:1:29: '2024-01-01' reads as a date, which no setting takes (hint: quote it to make it text)"]
    assert problems("compute: !foo {}\n") == ["c.yaml:1:10: the tag '!foo' is not allowed (hint: use plain YAML values only)"]


def test_deep_nesting_is_refused_at_once_not_by_recursion() -> None:
    for text in ("a: " + "[" * 5000 + "]" * 5000 + "\n",
                 "".join("  " * i + f"k{i}:\n" for i in range(300))):
        t0 = time.process_time()  # CPU time: a loaded machine does not make it fail
        got = problems(text)
        assert time.process_time() - t0 < 1.0
        assert len(got) == 1 and f"nested deeper than {MAX_DEPTH} levels" in got[0]
    assert problems("a: " + "[" * 100 + "]" * 100 + "\n") == [
        f"c.yaml:1:{3 + MAX_DEPTH}: nested deeper than {MAX_DEPTH} levels (hint: a config needs a few levels only)"]


# ------------------------------------------------------------ reading --------
def test_fifo_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(UsageError) as exc:
        read_config_file(fifo)  # opening a FIFO for reading would block until a writer comes
    assert time.monotonic() - t0 < 1.0
    assert (exc.value.message, exc.value.hint) == (
        f"{fifo}: is a named pipe (FIFO), not a regular file",
        "homelab reads its config from a file: save it first, e.g. > config.yaml")


def test_directory_device_and_socket_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        read_config_file(tmp_path)
    assert exc.value.message == f"{tmp_path}: is a directory, not a config file"
    assert exc.value.hint == f"give the YAML file's path, e.g. {tmp_path / 'config.yaml'}"
    with pytest.raises(UsageError) as exc:
        read_config_file(Path("/dev/zero"))  # would stream forever
    assert exc.value.message == "/dev/zero: is a character device, not a regular file"
    sock_path = tmp_path / "s.yaml"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        with pytest.raises(UsageError) as exc:
            read_config_file(sock_path)
        assert exc.value.message == f"{sock_path}: is a socket, not a regular file"
    finally:
        sock.close()


def test_size_limit_holds_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "c.yaml"
    with open(big, "wb") as f:
        f.truncate(10 * 1024 ** 3)  # 10 GiB, sparse: reading it would take minutes and the memory
    t0 = time.monotonic()
    with pytest.raises(UsageError) as exc:
        read_config_file(big)
    assert time.monotonic() - t0 < 1.0
    assert exc.value.message == f"{big}: larger than {MAX_BYTES // 1024} KiB, too big for a config"


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as exc:
        read_config_file(tmp_path / "nope.yaml")
    assert exc.value.message == f"{tmp_path / 'nope.yaml'}: no such file"
    with pytest.raises(UsageError) as exc:
        read_config_file(tmp_path / "nope" / "c.yaml")
    assert exc.value.message == f"{tmp_path / 'nope' / 'c.yaml'}: no such file"
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"a: \xff\n")
    with pytest.raises(UsageError) as exc:
        read_config_file(binary)
    assert (exc.value.message, exc.value.hint) == (f"{binary}: not UTF-8 text (byte 3)", "save the file as UTF-8")
    good = tmp_path / "g.yaml"
    good.write_text("version: 1\n")
    assert read_config_file(good) == "version: 1\n"


def test_libyaml_fast_path_gives_the_same_nodes_and_positions_as_pyyaml() -> None:
    """yamlpos composes with libyaml when it can: every node's tag, value and line:col must be
    what PyYAML's own parser (the error path) gives, also after non-ASCII text, CRLF line
    ends, flow style, block scalars and aliases."""
    import yaml

    from homelab.config import yamlpos

    texts = [
        "a: 1\nb: [x, {c: 'ä', d: \"ß\"}]\n",
        "name: café ünïcode — x\nitems:\n  - {k: v}   # comment ä\n  - &a [1, 2]\n  - *a\n",
        "a: 1\r\nb:\r\n  - 2\r\n  - 'three'\r\n",
        "s: |\n  line ä\n  two\nt: >-\n  folded\n  text\nu: ~\nv: 0x1F\nw: 1e3\nx: yes\n",
        "\ufeffk: bom first\n",
    ]

    def walk(node: yaml.Node) -> list[tuple[str, str, int, int]]:
        out = [(node.tag, node.value if isinstance(node, yaml.ScalarNode) else "", node.start_mark.line,
                node.start_mark.column)]
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                out += walk(child)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out += walk(k) + walk(v)
        return out

    assert yaml.__with_libyaml__  # the fast path exists here; without libyaml only _Loader runs
    for text in texts:
        fast = walk(yaml.compose(text, Loader=yaml.CSafeLoader))  # raises if libyaml cannot: no silent fallback
        assert fast == walk(yamlpos._compose(text)) == walk(yaml.compose(text, Loader=yamlpos._Loader)), text


@pytest.mark.parametrize("text", ["version: 1\n", "version: 1\nbilling: {budget: 5}\n",
                                  "version: 1\nprivilege: {generate_key: true}\n"])
@pytest.mark.parametrize("command", ["validate", "plan", "apply", "status"])
def test_a_config_naming_no_machine_is_an_error_that_says_how_to_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, command: str) -> None:
    from homelab import cli

    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert cli.main([command, str(path), *(["--yes"] if command == "apply" else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{path}:1:1: the config names no machine and no cloud server: there is nothing to set up "
                   "(hint: add your machines under compute.machines (config.example.yaml shows how), or run "
                   "`homelab` on a terminal: its wizard writes a config)"]
    assert not (tmp_path / "c.state.json").exists()  # nothing was run
