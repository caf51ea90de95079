"""Step for layer 4 (storage): where app data lives and where its backups go.

The repository password is never asked for: the config names an environment variable or a
command that prints it (the operator holds it; backups must survive the loss of every host).
Disks: a stable device path (`by_id`, from `ls -l /dev/disk/by-id` on the machine), or a
Hetzner volume size for a cloud server (homelab creates the volume). Serial-and-size
identities and S3 repositories (endpoint, bucket, keys) are left to the config file.
"""
from __future__ import annotations

from homelab.tui.wizard.fields import Answers, Field, ListField
from homelab.tui.wizard.step import WizardStep, field_entries, nest
from homelab.tui.wizard.steps.compute import machine_choices
from homelab.tui.wizard.steps.privilege import looks_like_token
from homelab.tui.wizard.yaml_text import Entry, Items, scalar

ENABLED = Field("enabled", "Back up app data with restic", kind="bool", default=True, wizard_only=True)
DISKS = ListField(
    "disks", "Disks for app data: a /dev/disk/by-id path, or GB of a new Hetzner volume",
    (
        Field("name", "name", placeholder="data1", width=8),
        Field("machine", "machine", placeholder="nas", width=10, pick_from=machine_choices, pick_one=True,
              pick_title="Pick the machine the disk is in (one)"),
        Field("by_id", "by-id path", placeholder="/dev/disk/by-id/ata-...", width=19),
        Field("volume.size_gb", "or GB", kind="int", placeholder="10", width=5),
        Field("mount", "mount", default="/srv/homelab", width=10),
        Field("format", "format", kind="bool", default=False),
    ),
    comment="A disk with a filesystem or partitions is formatted only with format: true and --confirm-delete.",
    add_label="add a disk",
)


class StorageStep(WizardStep):
    section = "storage"
    title = "storage"
    intro = ("Each app's data sits under the data root of its machine and is backed up with restic to "
             "every repository listed: rest-server on a machine of the homelab (over the mesh, append-only), "
             "a Storage Box (sftp), S3 (in the config file), or a local directory. A weekly drill proves a "
             "restore works.")
    comment = "app data, restic backups, restore drills"
    fields = (
        ENABLED,
        Field("data_root", "Data root on every machine", default="/srv/homelab",
              comment="Each app gets <data_root>/<app> on the machine it runs on."),
        Field("password_from", "Repository password from", kind="choice", default="env", path="password",
              choices=(("environment variable", "env"), ("command", "command")), wizard_only=True),
        DISKS,
        Field("password_source", "Variable name / command", default="RESTIC_PASSWORD", path="password",
              placeholder="RESTIC_PASSWORD or: pass show restic", wizard_only=True),
        ListField(
            "repositories", "Backup repositories: rest (rest-server on a machine), sftp or local",
            (
                Field("name", "name", placeholder="nas", width=8),
                Field("type", "type", placeholder="rest", default="rest", width=6),
                Field("machine", "machine", placeholder="nas", width=10,
                      pick_from=machine_choices, pick_one=True,
                      pick_title="Pick the machine that runs rest-server (one)"),
                Field("target", "sftp user@host:path", placeholder="u1@u1.your-storagebox.de:restic", width=24),
                Field("path", "local directory", placeholder="/mnt/usb/restic", width=16),
            ),
            comment="Every app is backed up to each repository (3-2-1: more than one, one elsewhere).",
            add_label="add a repository",
        ),
        Field("schedule.backup", "Backup schedule (OnCalendar)", default="daily",
              comment="When backups run (timers are persistent, with a random delay)."),
    )

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        repos = next(f for f in self.fields if isinstance(f, ListField) and f.key == "repositories")
        disks = [Entry(e.key, Items(tuple(nest(list(item)) for item in e.value.items)), e.comment)
                 for e in field_entries(DISKS, answers.get("disks")) if isinstance(e.value, Items)]
        if not answers.get("enabled", True) or not field_entries(repos, answers.get("repositories")):
            # no repository, no backups: the section would only restate defaults (disks alone still count)
            return tuple(disks)
        out: list[Entry] = []
        for f in self.fields:
            if isinstance(f, Field) and f.wizard_only:
                continue
            if f.key in ("repositories", "disks"):
                continue
            out.extend(field_entries(f, answers.get(f.key)))
        out.extend(disks)
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
