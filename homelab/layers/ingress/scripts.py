"""Installing a new Caddyfile: one on-host script (pure text) and the parse of what it says.

The script stages the file next to the live one, checks it with `caddy validate` as the
caddy user (so `tls internal` uses the service's own CA directory), then swaps it in and
reloads. `validate` does not catch a port in use or other runtime errors (wave2-facts §0.7):
the reload is the real gate. Caddy's reload is atomic — a config that fails to load leaves
the old one serving — so on a failed reload the script puts the old file back (a later
restart or reboot then serves what is serving now) and reports Caddy's own message.

Not `systemctl reload caddy`: Caddy 2.6.2 announces a reload to systemd (RELOADING=1) and
never says READY=1 when it fails (caddy#7385, fixed upstream in 2026 by PR #7597), so systemd
keeps the unit in "reloading" and `systemctl reload` hangs — in the lab for good, systemd
re-arming its 90 s timeout (systemd#37515). The script runs the unit's own ExecReload command
(`caddy reload --config /etc/caddy/Caddyfile --force`, as the caddy user), which returns
Caddy's message at once.

A failed reload is worse than "the old config keeps serving": Caddy 2.6.2 does not close the
listeners the new config had opened before the failure (caddy#7175, open), so a leaked :443
socket (SO_REUSEPORT) takes a share of new connections and drops them — measured in the lab,
about half. Hence:
- before reloading, every port the new config listens on (`caddy adapt`, plus :80 for the
  HTTPS redirects) must be free or Caddy's own; a port held by another process is refused
  (`port-busy`) with nothing touched — the usual cause of a failed reload never reaches Caddy;
- a reload that still fails (e.g. an address the machine does not have) puts the old file back
  and *restarts* Caddy onto it: a second or so of refused connections instead of a lasting
  leak, and the unit leaves the stuck "reloading" state.

The first install from Debian's default Caddyfile restarts instead of reloading: the old
config's admin API is on localhost:2019 and ours on a unix socket, and `caddy reload` talks
to the address in the *new* file, where nobody listens yet. Same when Caddy is not running.

Exit codes: 0 applied or unchanged, 3 invalid or port busy (nothing touched), 4 reload failed
(old file back, Caddy restarted onto it), 5 reload failed and restoring failed too.
"""
from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass

from homelab.layers.ingress.render import HEADER

LIVE = "/etc/caddy/Caddyfile"
TAG = "homelab-caddy"
EXIT_INVALID, EXIT_RELOAD_FAILED, EXIT_RESTORE_FAILED = 3, 4, 5


def render_apply_script(caddyfile: str, live: str = LIVE) -> str:
    # the heredoc's end marker is derived from the content, so the content cannot end it early
    marker = "HOMELAB_CADDYFILE_" + hashlib.sha256(caddyfile.encode()).hexdigest()[:16].upper()
    if not caddyfile.endswith("\n"):
        caddyfile += "\n"
    d = shlex.quote(live.rsplit("/", 1)[0])
    q = shlex.quote(live)
    header = shlex.quote(HEADER)
    return f"""\
set -u
tag={TAG}
live={q}
new=$(mktemp {d}/.Caddyfile.new.XXXXXX) || exit 1
old=$(mktemp {d}/.Caddyfile.old.XXXXXX) || exit 1
trap 'rm -f "$new" "$old"' EXIT
cat > "$new" <<'{marker}'
{caddyfile}{marker}
chmod 644 "$new"
if [ -f "$live" ] && cmp -s "$new" "$live"; then echo "$tag: unchanged"; exit 0; fi
# the last lines of a caddy run, without its JSON log lines: the message a person reads
caddy_message() {{ grep -v '^{{"level"' | grep -v '^$' | tail -n 3 | tr '\\n' ' '; }}
if ! out=$(runuser -u caddy -- env HOME=/var/lib/caddy caddy validate --adapter caddyfile --config "$new" 2>&1); then
  echo "$tag: invalid: $(printf '%s\\n' "$out" | caddy_message)"
  exit {EXIT_INVALID}
fi
# ports the new config listens on; :443 brings :80 for the automatic HTTPS redirects
ports=$(caddy adapt --adapter caddyfile --config "$new" 2>/dev/null | grep -o '"listen":\\[[^]]*\\]' |
  grep -oE ':[0-9]+"' | tr -d ':"' | sort -u)
case " $(echo $ports) " in *" 443 "*) ports="$ports 80" ;; esac
for p in $ports; do
  holder=$(ss -ltnpH "( sport = :$p )" 2>/dev/null | grep -v '(("caddy"' | grep -o 'users:(("[^"]*"' | head -n 1 | cut -d'"' -f2)
  if [ -n "$holder" ]; then echo "$tag: port-busy: port $p is in use by $holder"; exit {EXIT_INVALID}; fi
done
action=reload
if ! [ -f "$live" ] || ! grep -qxF {header} "$live" || ! systemctl -q is-active caddy; then action=restart; fi
had_old=0
if [ -f "$live" ]; then cp -p "$live" "$old" && had_old=1; fi
mv -f "$new" "$live"
reload() {{ timeout 60 runuser -u caddy -- env HOME=/var/lib/caddy caddy reload --config "$live" --force 2>&1; }}
if [ "$action" = reload ]; then
  if out=$(reload); then echo "$tag: applied (reload)"; exit 0; fi
else
  if systemctl restart caddy 2>/dev/null; then echo "$tag: applied (restart)"; exit 0; fi
  out=$(journalctl -u caddy -n 30 -o cat --no-pager 2>/dev/null | grep -i -E 'error|fail')
fi
msg=$(printf '%s\\n' "$out" | caddy_message)
if [ "$had_old" = 1 ] && mv -f "$old" "$live"; then
  # a restart, not a reload of the old file: only that closes the listeners the failure leaked
  if ! systemctl restart caddy; then echo "$tag: restore-failed: $msg"; exit {EXIT_RESTORE_FAILED}; fi
  echo "$tag: reload-failed: $msg"
  exit {EXIT_RELOAD_FAILED}
fi
echo "$tag: restore-failed: $msg"
exit {EXIT_RESTORE_FAILED}
"""


@dataclass(frozen=True)
class ApplyResult:
    status: str  # applied | unchanged | invalid | port-busy | reload-failed | restore-failed | unknown
    message: str  # Caddy's own words on failure; "reload"/"restart" when applied

    @property
    def ok(self) -> bool:
        return self.status in ("applied", "unchanged")

    @property
    def old_config_serving(self) -> bool:
        """Whether the sites still answer as before (reload-failed: after a restart onto the old file)."""
        return self.status in ("unchanged", "invalid", "port-busy", "reload-failed")


_LINE = re.compile(rf"^{TAG}: (applied|unchanged|invalid|port-busy|reload-failed|restore-failed)(?:: (.*)| \((\w+)\))?$")


def parse_apply_output(rc: int, stdout: str) -> ApplyResult:
    for line in reversed(stdout.splitlines()):
        m = _LINE.match(line.strip())
        if m:
            return ApplyResult(m.group(1), (m.group(2) or m.group(3) or "").strip())
    return ApplyResult("unknown", f"the Caddyfile script exited {rc} without saying what happened")
