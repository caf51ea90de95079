"""Step for layer 4 (storage): where app data lives and where its backups go.

The repository password is never asked for: the config names an environment variable or a
command that prints it (the operator holds it; backups must survive the loss of every host).
Disks are left to the config file (their identity needs `lsblk` on the machine).
"""
from __future__ import annotations

from homelab.tui.wizard.fields import Answers, Field, ListField
from homelab.tui.wizard.step import WizardStep, field_entries, nest
from homelab.tui.wizard.steps.privilege import looks_like_token
from homelab.tui.wizard.yaml_text import Entry, scalar

ENABLED = Field("enabled", "Back up app data with restic", kind="bool", default=True, wizard_only=True)


class StorageStep(WizardStep):
    section = "storage"
    title = "storage"
    intro = ("Each app's data sits under the data root of its machine and is backed up with restic to "
             "every repository listed: rest-server on a machine of the homelab (over the mesh, append-only), "
             "a Storage Box (sftp), S3, or a local directory. A weekly drill proves a restore works.")
    comment = "app data, restic backups, restore drills"
    fields = (
        ENABLED,
        Field("data_root", "Data root on every machine", default="/srv/homelab",
              comment="Each app gets <data_root>/<app> on the machine it runs on."),
        Field("password_from", "Repository password from", kind="choice", default="env", path="password",
              choices=(("environment variable", "env"), ("command", "command")), wizard_only=True),
        Field("password_source", "Variable name / command", default="RESTIC_PASSWORD", path="password",
              placeholder="RESTIC_PASSWORD or: pass show restic", wizard_only=True),
        ListField(
            "repositories", "Backup repositories",
            (
                Field("name", "name", placeholder="nas", width=10),
                Field("type", "type (rest, sftp, s3, local)", placeholder="rest", default="rest", width=8),
                Field("machine", "machine (rest: runs rest-server)", placeholder="nas", width=12),
                Field("target", "sftp: user@host:path", placeholder="u1@u1.your-storagebox.de:restic", width=30),
                Field("path", "local: directory", placeholder="/mnt/usb/restic", width=16),
            ),
            comment="Every app is backed up to each repository (3-2-1: more than one, one elsewhere).",
            add_label="add a repository",
        ),
        Field("schedule.backup", "Backup schedule (systemd OnCalendar)", default="daily",
              comment="When backups run (timers are persistent, with a random delay)."),
    )

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        repos = next(f for f in self.fields if isinstance(f, ListField))
        if not answers.get("enabled", True) or not field_entries(repos, answers.get("repositories")):
            return ()  # no repository, no backups: the section would only restate defaults
        out: list[Entry] = []
        for f in self.fields:
            if isinstance(f, Field) and f.wizard_only:
                continue
            if f.key == "repositories":
                continue
            out.extend(field_entries(f, answers.get(f.key)))
        source = str(answers.get("password_source", "")).strip()
        if source:
            kind = str(answers.get("password_from", "env"))
            out.append(Entry("password", f"{{{kind}: {scalar('text', source)}}}",
                             "The repository password: where to read it, never the password itself."))
        out.extend(field_entries(repos, answers.get("repositories")))
        return nest(out)

    def extra_problems(self, answers: Answers) -> list[str]:
        if str(answers.get("password_from", "env")) == "env" and looks_like_token(str(answers.get("password_source", ""))):
            return ["password: that looks like a password itself; name the variable that holds it"]
        return []


STEP = StorageStep()
