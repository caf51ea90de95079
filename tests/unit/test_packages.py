"""One apt transaction per host: every layer's package claims, installed by compute (pure plan)."""
from __future__ import annotations

from pathlib import Path

from homelab.config import load_config
from homelab.layers.compute.base_os import diff_base
from homelab.layers.compute.packages import (
    CHECKS_KEY, PACKAGES_KEY, HostPackages, host_packages, package_probes,
)
from homelab.probe import ProbeResult, parse_probe_output, render_probe_script

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = load_config(ROOT / "config.example.yaml")
NO_MODULE = "! [ -d /sys/module/wireguard ] && ! modprobe -n -q wireguard"
DEBIAN_13 = "! grep -Eq '^VERSION_ID=\"?(9|1[0-2])\"?$' /etc/os-release"


def _packages(host: str) -> HostPackages:
    return host_packages(EXAMPLE.compute.base.packages, EXAMPLE.claims, host)


def _dpkg(installed: dict[str, str]) -> ProbeResult:
    return ProbeResult(0, "".join(f"{name} ii  {version}\n" for name, version in installed.items()))


def test_every_layer_claims_its_packages_and_each_host_gets_its_own_list() -> None:
    owners = {p: o for p, o in _packages("web-1").always}
    assert owners == {"ca-certificates": "compute", "curl": "compute", "jq": "compute", "rsync": "compute",
                      "tzdata": "compute", "wireguard-tools": "mesh", "iputils-ping": "mesh",
                      "sudo": "permissions", "nftables": "permissions", "netbase": "permissions",
                      "unattended-upgrades": "permissions", "e2fsprogs": "storage", "caddy": "ingress",
                      # the first claim names the owner: apps (compose) before ingress's Anubis
                      "docker.io": "apps", "docker-cli": "apps", "docker-compose": "apps"}
    # docker-cli is claimed by apps outright, so ingress's conditional claim of it falls away
    assert _packages("web-1").conditional == (("wireguard-go", "mesh", NO_MODULE),)
    nas = {p for p, _ in _packages("nas").always}
    assert {"restic", "restic-rest-server"} <= nas and "caddy" not in nas  # the repository machine
    pi = dict(_packages("pi-1").always)
    assert pi["docker.io"] == "apps" and pi["docker-compose"] == "apps" and pi["restic"] == "storage"  # a client


def test_a_fresh_host_gets_all_of_them_in_one_apt_transaction() -> None:
    changes, _ = diff_base("web-1", EXAMPLE.compute.base, None, _packages("web-1"))
    apt = [(c, op) for c in changes for op in c.ops if op.name == "apt.packages"]
    assert len(apt) == 1
    change, op = apt[0]
    # not probed yet (a server this apply creates): the conditional ones too
    assert op.kwargs["packages"] == [p for p, _ in _packages("web-1").always] + ["wireguard-go"]
    assert op.kwargs["no_recommends"] is True and op.kwargs["update"] is True
    assert change.detail == ("compute: ca-certificates, curl, jq, rsync, tzdata",
                             "mesh: wireguard-tools, iputils-ping, wireguard-go",
                             "permissions: sudo, nftables, netbase, unattended-upgrades", "storage: e2fsprogs",
                             "ingress: caddy", "apps: docker.io, docker-cli, docker-compose")


def test_only_what_is_missing_and_wireguard_go_only_where_the_kernel_has_no_module() -> None:
    wanted = _packages("nas")
    have = {p: "1.0" for p in wanted.names if p not in ("restic-rest-server", "wireguard-go")}
    for module, expect in ((False, ["restic-rest-server", "wireguard-go"]), (True, ["restic-rest-server"])):
        probed = {PACKAGES_KEY: _dpkg(have), CHECKS_KEY: ProbeResult(0, "" if module else "0\n")}
        changes, _ = diff_base("nas", EXAMPLE.compute.base, probed, wanted)
        assert [op.kwargs["packages"] for c in changes for op in c.ops if op.name == "apt.packages"] == [expect]
    probed = {PACKAGES_KEY: _dpkg({p: "1.0" for p in wanted.names}), CHECKS_KEY: ProbeResult(0, "0\n")}
    changes, same = diff_base("nas", EXAMPLE.compute.base, probed, wanted)
    assert not any(op.name == "apt.packages" for c in changes for op in c.ops)
    assert "nas: packages installed (15, every layer's)" in same


def test_the_conditions_hold_where_they_should(tmp_path: Path) -> None:
    import subprocess

    for version, held in (('VERSION_ID="12"', False), ('VERSION_ID="13"', True), ("VERSION_ID=14", True)):
        release = tmp_path / "os-release"
        release.write_text(f"ID=debian\n{version}\n")
        test = DEBIAN_13.replace("/etc/os-release", str(release))
        assert (subprocess.run(["sh", "-c", test]).returncode == 0) is held, version


def test_the_condition_runs_on_the_host_inside_the_one_probe_script() -> None:
    probes = package_probes(_packages("nas"))
    assert probes[CHECKS_KEY] == f"if ( {NO_MODULE} ) >/dev/null 2>&1; then echo 0; fi; true"
    script, nonce = render_probe_script(probes, nonce="n")
    assert script.count("dpkg-query") == 1  # one dpkg read for every layer's packages
    out = "@n begin compute.package_checks\n0\n@n end compute.package_checks 0\n"
    assert parse_probe_output(out, nonce)[CHECKS_KEY].out.strip() == "0"


def test_no_layer_but_compute_installs_debian_packages() -> None:
    """Layers assume their claimed packages; `apt.packages` is compute's alone (the apps' and
    services' scripts keep an install only as a fallback when the package is missing)."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "homelab" / "layers").rglob("*.py")
                 if '"apt.packages"' in p.read_text() and p.parent.name != "compute"]
    assert offenders == []


def test_anubis_alone_brings_docker_and_its_client_only_on_debian_13() -> None:
    from homelab.claims import Claims, HttpService, NeedsPackage
    from homelab.config.ingress import IngressConfig, ingress_derived_claims

    ingress = IngressConfig(machines=("web",))
    plain = Claims((HttpService("apps", "apps.list[0]", "cal", ("pi",), 20001),))
    assert list(ingress_derived_claims(ingress, None, plain)) == []  # no Anubis: no Docker on ingress
    guarded = Claims((HttpService("apps", "apps.list[0]", "cal", ("pi",), 20001, anubis=True),))
    assert list(ingress_derived_claims(ingress, None, guarded)) == [
        NeedsPackage("ingress", "ingress.machines[0]", "web", "docker.io"),
        NeedsPackage("ingress", "ingress.machines[0]", "web", "docker-cli", only_if=DEBIAN_13)]
