"""Status of layer 2 per host, evaluated from probe output (pure).

"admin can log in" needs no extra connection: the engine opened a NEW connection to every
host at the start of this run, as the login user homelab switched to (state login_user).
That connection working, as the operator user, with sudo (the probes ran through `sudo -n`),
is exactly the proof.
"""
from __future__ import annotations

from homelab.config.permissions import PermissionsConfig
from homelab.layers.permissions.probes import HostView, security_updates
from homelab.layers.permissions.sshd import hardening_problems
from homelab.model import Health, Monitor

LAYER = "permissions"


def host_monitors(host: str, cfg: PermissionsConfig, view: HostView, login_user: str, unreachable: str | None
                  ) -> list[Monitor]:
    def mon(name: str, health: Health, reason: str) -> Monitor:
        return Monitor(LAYER, host, name, health, reason)

    operator = cfg.operator
    if unreachable is not None or not view.reachable:
        return [mon("admin login", Health.FAIL, unreachable or "not checked")]
    out: list[Monitor] = []
    if operator is None or login_user == operator.name:
        out.append(mon("admin login", Health.OK, f"new login as {login_user} with sudo works"))
    else:
        out.append(mon("admin login", Health.WARN, f"homelab still logs in as {login_user}; apply switches to "
                                                    f"{operator.name}"))

    eff = dict(view.effective)
    if not eff:
        out.append(mon("root login", Health.UNKNOWN, "sshd -T gave nothing"))
        out.append(mon("password login", Health.UNKNOWN, "sshd -T gave nothing"))
    else:
        root = (eff.get("permitrootlogin") or ["?"])[0]
        if root == "no":
            out.append(mon("root login", Health.OK, "refused (sshd -T: permitrootlogin no)"))
        elif cfg.sshd.root_login:
            out.append(mon("root login", Health.OK, f"allowed by the config ({root})"))
        else:
            out.append(mon("root login", Health.FAIL, f"allowed: permitrootlogin {root}"))
        pw = (eff.get("passwordauthentication") or ["?"])[0]
        kbd = (eff.get("kbdinteractiveauthentication") or ["no"])[0]
        if pw == "no" and kbd == "no":
            out.append(mon("password login", Health.OK, "refused (passwordauthentication no)"))
        elif cfg.sshd.password_login:
            out.append(mon("password login", Health.OK, "allowed by the config"))
        else:
            out.append(mon("password login", Health.FAIL, f"allowed: passwordauthentication {pw}, "
                                                          f"kbdinteractiveauthentication {kbd}"))
        problems = hardening_problems(eff, cfg.sshd)
        if problems:
            out.append(mon("sshd config", Health.WARN, "; ".join(problems) + " (another sshd_config.d file wins?)"))

    if not cfg.firewall.enabled:
        out.append(mon("firewall", Health.OK if not view.nft_loaded else Health.WARN,
                       "not managed (firewall.enabled: false)" + ("; table inet homelab still loaded"
                                                                  if view.nft_loaded else "")))
    elif not view.nft_loaded:
        out.append(mon("firewall", Health.FAIL, "table inet homelab is not loaded: inbound traffic is not filtered"))
    elif view.nft_policy != "drop":
        out.append(mon("firewall", Health.FAIL, f"input policy is {view.nft_policy or 'unknown'}, not drop"))
    elif not view.nft_same:
        out.append(mon("firewall", Health.WARN, "active, but the rules were changed outside homelab"))
    else:
        out.append(mon("firewall", Health.OK, "active: inbound default deny"))

    if cfg.unattended_upgrades:
        security = security_updates(view.pending)
        timer = view.upgrades.get("timer", "").split()
        if not view.upgrades.get("package", "").startswith("ii"):
            out.append(mon("upgrades", Health.FAIL, "unattended-upgrades is not installed"))
        elif security:
            shown = ", ".join(security[:5]) + (" …" if len(security) > 5 else "")
            out.append(mon("upgrades", Health.WARN, f"{len(security)} security updates pending: {shown}"))
        elif timer[:2] != ["enabled", "active"]:
            out.append(mon("upgrades", Health.WARN, f"apt-daily-upgrade.timer is {' '.join(timer) or 'missing'}: "
                                                    "updates never run"))
        else:
            out.append(mon("upgrades", Health.OK, f"unattended; {len(view.pending)} updates pending, none for "
                                                  "security"))
    return out
