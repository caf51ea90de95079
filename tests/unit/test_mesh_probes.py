"""Mesh probes: what is read on a node (never a secret) and how the output is parsed."""
from __future__ import annotations

from homelab.layers.mesh.probes import MASKED, mesh_probes, parse_facts, parse_psk_reads
from homelab.probe import ProbeResult, as_probe, parse_probe_output, render_probe_script
from test_mesh_fixtures import KEYS

HOST_OUT = f"""kernel none
keymode 600
pubkey {KEYS['h1']}
psk h2 0123456789abcdef
"""
# the host's batched answers (every layer's packages and units in one dpkg-query, one systemctl)
PACKAGES_OUT = "curl ii  8.14\nwireguard-tools ii  1.0\niputils-ping ii  3:2024\nwireguard-go un  \n"
UNITS_OUT = ("Id=homelab-guard.service\nLoadState=loaded\nUnitFileState=disabled\nActiveState=inactive\n\n"
             "Id=wg-quick@wg0.service\nLoadState=loaded\nUnitFileState=enabled\nActiveState=active\n")
WG_OUT = f"""now 1700000100
pub {KEYS['h1']}
port 51820
fwd 0
impl userspace
hs {KEYS['h2']}\t1700000090
hs {KEYS['h3']}\t0
ips {KEYS['h2']}\t10.100.0.2/32
ips {KEYS['h3']} 10.100.0.3/32,10.100.0.4/32
rpsk {KEYS['h2']} 0123456789abcdef
rpsk {KEYS['h3']} -
"""


def test_parse_facts_from_probe_output() -> None:
    facts = parse_facts({
        "mesh.host": ProbeResult(0, HOST_OUT), "mesh.packages": ProbeResult(0, PACKAGES_OUT),
        "mesh.unit": ProbeResult(0, UNITS_OUT),
        "mesh.conf": ProbeResult(0, "[Interface]\nAddress = 10.100.0.1/24"),
        "mesh.ping": ProbeResult(0, "ping 10.100.0.3 -\nping 10.100.0.2 0.412"),
        "mesh.wg": ProbeResult(0, WG_OUT),
    })
    assert facts.packages == {"wireguard-tools", "iputils-ping"}  # "un": not installed; curl: not the mesh's
    assert (facts.kernel, facts.key_mode, facts.public_key) == ("none", "600", KEYS["h1"])
    assert facts.unit_enabled and facts.unit_active
    assert facts.conf == "[Interface]\nAddress = 10.100.0.1/24\n"
    assert facts.pings == {"10.100.0.3": None, "10.100.0.2": 0.412}
    assert dict(facts.psk_hashes) == {"h2": "0123456789abcdef"}
    run = facts.running
    assert run is not None and run.now == 1700000100 and run.listen_port == 51820 and not run.forwarding
    assert dict(run.handshakes) == {KEYS["h2"]: 1700000090, KEYS["h3"]: 0}
    assert run.allowed_ips[KEYS["h3"]] == ("10.100.0.3/32", "10.100.0.4/32")
    assert run.psk_hashes[KEYS["h3"]] == "-"
    assert facts.backend == "wireguard-go (userspace)"


def test_nothing_installed_yet() -> None:
    facts = parse_facts({"mesh.host": ProbeResult(0, "kernel available\nunit  \n"),
                         "mesh.conf": ProbeResult(3, ""), "mesh.wg": ProbeResult(0, "now 5")})
    assert facts.public_key is None and facts.conf is None and facts.running is None
    assert not facts.unit_active and not facts.unit_enabled and facts.kernel_module


def test_probes_never_print_a_secret() -> None:
    text = "\n".join(as_probe(p).command for p in mesh_probes("wg0", ["10.100.0.2"]).values())
    assert "wg showconf" not in text  # it prints the private key (the dump is split on the node: below)
    assert "cat /etc/wireguard/private.key" not in text
    assert 'wg pubkey < "$f"' in text
    assert MASKED in text  # a hand-written PrivateKey line in wg0.conf is masked on the node
    assert "mesh.psk_read" not in mesh_probes("wg0", [])


def test_psk_read_only_when_asked_and_parsed_strictly() -> None:
    probes = mesh_probes("wg0", [], psk_reads=["h2", "h3"])
    assert "/etc/wireguard/psk/h2.psk" in probes["mesh.psk_read"]
    got = parse_psk_reads(ProbeResult(0, f"psk h2 {KEYS['h4']}\npsk h3 garbage\n"))
    assert got == {"h2": KEYS["h4"]}


def test_probes_survive_the_batched_script_round_trip() -> None:
    script, nonce = render_probe_script(mesh_probes("wg0", ["10.100.0.2"]), nonce="n")
    assert "ping -n -q -c 1 -w 3 -i 0.5" in script
    out = "@n begin mesh.host\n" + HOST_OUT + "\n@n end mesh.host 0\n"
    assert parse_facts(parse_probe_output(out, nonce)).public_key == KEYS["h1"]


def test_the_live_interface_is_read_from_one_dump_without_printing_its_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`wg show wg0 dump` (a stand-in `wg` printing wg(8)'s dump format) is split on the node:
    the private key and the preshared keys it holds never reach the output, one `wg` call."""
    import os
    import subprocess

    from homelab.layers.mesh.probes import runtime_probe

    private, psk = "cHJpdmF0ZS1rZXktbm90LXRvLWJlLXByaW50ZWQtMTIzNDU=", "cHJlc2hhcmVkLWtleS1ub3QtdG8tYmUtcHJpbnRlZDE9"
    dump = "\n".join(["\t".join([private, KEYS["h1"], "51820", "off"]),
                      "\t".join([KEYS["h2"], psk, "10.0.0.2:51820", "10.100.0.2/32", "1700000090", "10", "20", "off"]),
                      "\t".join([KEYS["h3"], "(none)", "(none)", "10.100.0.3/32,10.100.0.4/32", "0", "0", "0", "25"])])
    (tmp_path / "dump").write_text(dump + "\n")
    wg = tmp_path / "wg"
    wg.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n[ "$*" = "show wg0 dump" ] && cat {tmp_path}/dump\n')
    wg.chmod(0o755)
    out = subprocess.run(["sh", "-c", runtime_probe("wg0")], capture_output=True, text=True, check=True,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}).stdout
    assert private not in out and psk not in out
    assert (tmp_path / "calls").read_text() == "show wg0 dump\n"
    facts = parse_facts({"mesh.wg": ProbeResult(0, out)})
    run = facts.running
    assert run is not None and run.public_key == KEYS["h1"] and run.listen_port == 51820
    assert dict(run.handshakes) == {KEYS["h2"]: 1700000090, KEYS["h3"]: 0}
    assert dict(run.allowed_ips) == {KEYS["h2"]: ("10.100.0.2/32",), KEYS["h3"]: ("10.100.0.3/32", "10.100.0.4/32")}
    assert run.psk_hashes[KEYS["h3"]] == "-" and len(run.psk_hashes[KEYS["h2"]]) == 16
    assert run.implementation == "userspace"  # no /sys/class/net/wg0 here
