"""Step for layer 0 (privilege): the operator key, and where the Hetzner token comes from.

The token itself is never asked for: the config names an environment variable or a command
that prints it.
"""
from __future__ import annotations

import re

from homelab.tui.wizard.fields import Answers, Field
from homelab.tui.wizard.lab_machines import lab_key
from homelab.tui.wizard.step import StepAction, WizardStep, field_entries
from homelab.tui.wizard.yaml_text import Entry, scalar

# A pasted Hetzner API token is 64 letters and digits, mixed case; a variable name
# (HCLOUD_TOKEN) is not. The parser would accept the token as a "variable name" and the
# secret would land in the config, so the wizard refuses to write it.
_LOOKS_LIKE_TOKEN = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9]{32,}$")


def looks_like_token(text: str) -> bool:
    return bool(_LOOKS_LIKE_TOKEN.match(text.strip()))


def use_lab_key(answers: Answers) -> Answers:
    key = lab_key()
    return {**answers, "ssh_key": key} if key else answers


class PrivilegeStep(WizardStep):
    section = "privilege"
    title = "access"
    intro = ("The SSH key homelab logs in with, and where it reads the Hetzner Cloud API token from "
             "(an environment variable or a command — never the token itself).")
    comment = "who homelab is when it logs in"
    fields = (
        Field("ssh_key", "Operator private key", default="~/.ssh/id_ed25519",
              comment="Operator private key (ed25519, OpenSSH format). Its .pub file sits next to it."),
        Field("generate_key", "Generate the key if it does not exist", kind="bool", default=False,
              comment="Create ssh_key (mode 0600) if it does not exist yet."),
        Field("token_from", "Hetzner token from", kind="choice", default="env", path="hcloud_token",
              choices=(("environment variable", "env"), ("command", "command"))),
        Field("token_source", "Variable name / command", default="HCLOUD_TOKEN", path="hcloud_token",
              placeholder="HCLOUD_TOKEN or: pass show hetzner"),
    )
    actions = (StepAction("lab-key", "use the running lab's key", use_lab_key, lambda: lab_key() is not None),)

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        plain = [f for f in self.fields if f.key in ("ssh_key", "generate_key")]
        out: list[Entry] = []
        for f in plain:
            out.extend(field_entries(f, answers.get(f.key)))
        source = str(answers.get("token_source", "")).strip()
        kind = str(answers.get("token_from", "env"))
        if source:
            out.append(Entry("hcloud_token", f"{{{kind}: {scalar('text', source)}}}",
                             "Hetzner Cloud API token: where to read it, never the token itself."))
        return tuple(out)

    def extra_problems(self, answers: Answers) -> list[str]:
        source = str(answers.get("token_source", ""))
        if answers.get("token_from", "env") == "env" and looks_like_token(source):
            return ["privilege.hcloud_token.env: this looks like the token itself, not a variable name "
                    "(hint: export HCLOUD_TOKEN=<token> in your shell and write HCLOUD_TOKEN here)"]
        return []


STEP = PrivilegeStep()
