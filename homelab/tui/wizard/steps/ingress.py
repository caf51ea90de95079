"""Step for layer 5 (ingress): which machines run Caddy, the domain, ACME email or the internal CA, DNS.

Per-app hostnames and Anubis are per app (`anubis: true` in the apps step's config, or
`ingress.apps` in config.yaml); the step writes the section's common part.
"""
from __future__ import annotations

from homelab.tui.wizard.fields import Answers, Field
from homelab.tui.wizard.step import WizardStep, field_entries, nest
from homelab.tui.wizard.steps.compute import machine_choices
from homelab.tui.wizard.yaml_text import Entry, flow_list

ENABLED = Field("enabled", "Serve the apps through Caddy (HTTPS, DNS records)", kind="bool", default=False,
                wizard_only=True)
# typed "a, b" or picked (▾); always written as a list, `machines: [a]` for one
MACHINES = Field("machines", "Ingress machines (a, b, ...)", placeholder="web-1",
                 comment="Machines that run Caddy; ports 80/443 open there only.",
                 pick_from=machine_choices, pick_title="Pick the machines that run Caddy (one or several)")
TLS_MODE = Field("tls.mode", "Certificates", kind="choice", default="acme",
                 choices=(("ACME (Let's Encrypt): public names", "acme"),
                          ("Caddy's internal CA: names only reachable inside", "internal")),
                 comment="acme: public names; internal: `homelab ca export` gives the root for your devices.")


class IngressStep(WizardStep):
    section = "ingress"
    title = "ingress"
    intro = ("Caddy on the ingress machines gives every app a hostname (APP.<domain>) and a certificate, "
             "proxies to the machine it runs on over the mesh, and writes DNS records where a zone is named.")
    comment = "Caddy, TLS and DNS for the apps"
    fields = (
        ENABLED,
        MACHINES,
        Field("domain", "Domain (apps: APP.<domain>)", placeholder="example.org",
              comment="An app gets APP.<domain> unless ingress.apps names its hostname."),
        TLS_MODE,
        Field("tls.email", "ACME email (acme only)", placeholder="ops@example.org",
              comment="The CA writes here before a certificate expires."),
        Field("dns.provider", "DNS records", kind="choice", default="none",
              choices=(("listed in the plan, created by hand", "none"), ("Hetzner DNS (Cloud API)", "hetzner")),
              comment="hetzner: records are written with privilege.hcloud_token; none: the plan lists them."),
        Field("dns.zone", "DNS zone (hetzner only)", placeholder="example.org"),
    )

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        if not answers.get("enabled", False):
            return ()
        out: list[Entry] = []
        machines = [m.strip() for m in str(answers.get("machines", "")).split(",") if m.strip()]
        if machines:
            out.append(Entry("machines", flow_list(machines), MACHINES.comment))
        skip = {"enabled", "machines"}
        if answers.get("tls.mode", "acme") == "internal":
            skip.add("tls.email")
        if answers.get("dns.provider", "none") != "hetzner":
            skip |= {"dns.provider", "dns.zone"}
        for f in self.fields:
            if isinstance(f, Field) and f.key not in skip:
                out.extend(field_entries(f, answers.get(f.key)))
        return nest(out)


STEP = IngressStep()
