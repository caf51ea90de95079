"""Ingress monitors: certificate days left (WARN < 14, FAIL < 3) and the HTTPS probe, from the
probes' output. The probe scripts themselves run in tests/lab/test_ingress_lab.py."""
from __future__ import annotations

from homelab.layers.ingress.monitors import (CertFacts, HttpsFacts, cert_monitor, https_monitor, ingress_monitors,
                                             parse_cert_probe, parse_https_probe, parse_openssl_date,
                                             render_cert_probe, render_https_probe)
from homelab.model import Health

NOW = parse_openssl_date("Dec  1 12:00:00 2026 GMT")
DAY = 86400.0

CERT_OUT = """\
cert notes.example.org notAfter=Mar  1 12:00:00 2027 GMT issuer=CN = Pebble Intermediate CA 1a2b3c
cert soon.example.org notAfter=Dec 11 12:00:00 2026 GMT issuer=C = US, O = Let's Encrypt, CN = R11
cert gone.example.org none
cert odd.example.org notAfter=someday
noise from a broken probe
"""


def test_parse_cert_probe() -> None:
    got = parse_cert_probe(CERT_OUT)
    assert got["notes.example.org"] == CertFacts(NOW + 90 * DAY, "CN = Pebble Intermediate CA 1a2b3c")
    assert got["soon.example.org"].not_after == NOW + 10 * DAY
    assert got["gone.example.org"] == CertFacts(None)
    assert got["odd.example.org"] == CertFacts(None, "unreadable date 'someday'")
    assert len(got) == 4


def test_days_left_thresholds() -> None:
    def verdict(days: float) -> tuple[Health, str]:
        m = cert_monitor("a.example.org", CertFacts(NOW + days * DAY, "R11"), NOW)
        return m.health, m.reason

    assert verdict(90) == (Health.OK, "90 days left (R11)")
    assert verdict(14) == (Health.OK, "14 days left (R11)")
    assert verdict(13.5)[0] is Health.WARN and "renewal is not happening" in verdict(13.5)[1]
    assert verdict(3)[0] is Health.WARN
    assert verdict(2.9)[0] is Health.FAIL
    assert verdict(-2) == (Health.FAIL, "expired 2 days ago (R11)")
    assert cert_monitor("a", CertFacts(None), NOW).health is Health.FAIL
    assert cert_monitor("a", None, NOW).health is Health.UNKNOWN


def test_internal_ca_certificates_are_judged_in_hours() -> None:
    """Caddy's internal CA issues 12-hour certificates: half a day left is healthy there."""
    def verdict(hours: float) -> tuple[Health, str]:
        m = cert_monitor("wiki.lan", CertFacts(NOW + hours * 3600, "CN = Caddy Local Authority"), NOW, internal=True)
        return m.health, m.reason

    assert verdict(11.9) == (Health.OK, "11.9 hours left (CN = Caddy Local Authority) (internal CA)")
    assert verdict(1.5)[0] is Health.WARN and verdict(0.4)[0] is Health.FAIL
    got = ingress_monitors(["wiki.lan", "pub.example.org"], {"wiki.lan": CertFacts(NOW + 6 * 3600),
                                                              "pub.example.org": CertFacts(NOW + 6 * 3600)},
                           {}, NOW, internal=["wiki.lan"])
    assert [(m.subject, m.name, m.health) for m in got if m.name == "certificate"] == [
        ("pub.example.org", "certificate", Health.FAIL), ("wiki.lan", "certificate", Health.OK)]


def test_https_probe_and_verdicts() -> None:
    got = parse_https_probe("https a.example.org 200 0.012345\nhttps b.example.org 502 0.003\n"
                            "https c.example.org 000 10.001\nhttps d.example.org 200 2.5\ngarbage\n")
    assert got == {"a.example.org": HttpsFacts(200, 0.012345), "b.example.org": HttpsFacts(502, 0.003),
                   "c.example.org": HttpsFacts(0, 10.001), "d.example.org": HttpsFacts(200, 2.5)}
    assert [(m.health, m.reason) for m in (https_monitor(h, got[h]) for h in sorted(got))] == [
        (Health.OK, "200 in 12 ms"),
        (Health.FAIL, "502 in 3 ms: the app behind Caddy does not answer"),
        (Health.FAIL, "no answer through Caddy after 10.0 s"),
        (Health.WARN, "200 in 2500 ms: slow")]
    assert https_monitor("x", None).health is Health.UNKNOWN


def test_one_cert_and_one_https_monitor_per_hostname_in_order() -> None:
    ms = ingress_monitors(["b.example.org", "a.example.org", "a.example.org"],
                          parse_cert_probe(CERT_OUT), {"a.example.org": HttpsFacts(200, 0.01)}, NOW)
    assert [(m.subject, m.name, m.health) for m in ms] == [
        ("a.example.org", "certificate", Health.UNKNOWN), ("a.example.org", "https", Health.OK),
        ("b.example.org", "certificate", Health.UNKNOWN), ("b.example.org", "https", Health.UNKNOWN)]


def test_probe_scripts_quote_and_sort() -> None:
    cert = render_cert_probe(["b.example.org", "a.example.org"])
    assert cert.index("-servername a.example.org") < cert.index("-servername b.example.org")
    assert "openssl x509 -noout -enddate" in cert and "cert a.example.org none" in cert
    https = render_https_probe(["a.example.org"])
    assert "--resolve a.example.org:443:127.0.0.1 https://a.example.org:443/" in https
