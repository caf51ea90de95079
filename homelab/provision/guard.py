"""homelab-guard: sshd and firewall changes on probation, undone by the host itself.

A change that can cut homelab off (a new sshd config, a new rule set) is never simply
installed. The guard script on the host:
  1. checks the staged candidate (`sshd -t` on a config that includes it, `nft -c -f`):
     a broken file never replaces the working one;
  2. keeps the live file as a backup and arms a systemd timer that restores it after
     `revert_after` seconds (arming comes first: if it fails, nothing changes);
  3. installs the candidate and activates it (sshd reload / atomic `nft -f`).
The controller then opens a brand-new SSH connection (confirm.py) and, through it, runs
`homelab-guard confirm`. No new login within the window (wrong port, rules that drop SSH,
keys not accepted ...) means no confirmation: the timer restores the backup and reactivates
it. A reboot inside the window does the same (homelab-guard.service runs `boot` early and
restores anything still pending), so a half-tried change cannot survive a power cut either.

Tokens are the first 16 hex digits of the candidate's sha256: the plan stays deterministic,
and a confirmation can only keep the exact change it was made for.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

from homelab.model import Op

# The live files the guard protects (their layers import these paths from here).
DROPIN = "/etc/ssh/sshd_config.d/10-homelab.conf"  # sshd, layer 2
NFT_LIVE = "/etc/homelab/firewall.nft"  # the firewall, layer 2

GUARD_PATH = "/usr/local/sbin/homelab-guard"
GUARD_DIR = "/var/lib/homelab/guard"
GUARD_UNIT = "/etc/systemd/system/homelab-guard.service"
FIREWALL_UNIT = "/etc/systemd/system/homelab-firewall.service"
NFT_LISTING = f"{GUARD_DIR}/nft.listing"  # `nft list table` right after a confirmed load (drift check)
KINDS = ("sshd", "nft")

GUARD_SCRIPT = r"""#!/bin/sh
# homelab-guard: put an sshd or firewall change on probation. Managed by homelab.
#
#   arm KIND TOKEN SECONDS  check the staged candidate (DIR/KIND.new), keep the live file as a
#                           backup, arm a timer that restores it after SECONDS, then install
#                           and activate the candidate                     (KIND: sshd | nft)
#   confirm KIND TOKEN      keep the change (run through a NEW ssh login: proof that it works)
#   revert KIND TOKEN       restore the backup now (what the timer runs)
#   status KIND             pending|reverted|confirmed TOKEN, or none
#   boot                    early at boot: restore every change that was never confirmed
# (`local` is not POSIX, but dash, bash and busybox sh all have it)
set -u
umask 077
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
DIR=/var/lib/homelab/guard
SELF=/usr/local/sbin/homelab-guard

die() { echo "homelab-guard: $*" >&2; logger -t homelab-guard "$*" 2>/dev/null; exit 1; }
say() { echo "homelab-guard: $*"; logger -t homelab-guard "$*" 2>/dev/null; return 0; }

live_of() {
	case "$1" in
	sshd) echo /etc/ssh/sshd_config.d/10-homelab.conf ;;
	nft) echo /etc/homelab/firewall.nft ;;
	*) echo "homelab-guard: unknown kind '$1'" >&2; exit 2 ;;
	esac
}

ssh_unit() {
	if systemctl cat ssh.service >/dev/null 2>&1; then echo ssh.service; else echo sshd.service; fi
}

# check KIND FILE: would FILE work? Changes nothing. The sshd test config includes the
# candidate first, then the real config: the candidate's values win, as they will when live.
check() {
	local rc
	case "$1" in
	sshd)
		printf 'Include %s\nInclude /etc/ssh/sshd_config\n' "$2" > "$DIR/sshd.test.conf" || return 1
		sshd -t -f "$DIR/sshd.test.conf"
		rc=$?
		rm -f "$DIR/sshd.test.conf"
		return $rc ;;
	nft) nft -c -f "$2" ;;
	esac
}

# put SRC DEST: replace DEST atomically (temp file beside it, then rename)
put() {
	mkdir -p "$(dirname "$2")" && cp "$1" "$2.homelab-tmp" && chmod 0644 "$2.homelab-tmp" \
		&& mv -f "$2.homelab-tmp" "$2"
}

activate() {
	case "$1" in
	sshd) systemctl reload-or-restart "$(ssh_unit)" ;;
	nft)
		if [ -f "$(live_of nft)" ]; then
			nft -f "$(live_of nft)"
		else
			nft delete table inet homelab 2>/dev/null
			return 0
		fi ;;
	esac
}

# restore KIND: the backup (or no file, if there was none) becomes the live file again
restore() {
	local live
	live=$(live_of "$1")
	if [ -f "$DIR/$1.backup" ]; then
		put "$DIR/$1.backup" "$live" || return 1
	elif [ -f "$DIR/$1.absent" ]; then
		rm -f "$live"
	fi
	rm -f "$DIR/$1.backup" "$DIR/$1.absent"
}

stop_timer() {
	systemctl stop "homelab-guard-revert-$1.timer" "homelab-guard-revert-$1.service" >/dev/null 2>&1
	systemctl reset-failed "homelab-guard-revert-$1.timer" "homelab-guard-revert-$1.service" >/dev/null 2>&1
	return 0
}

pending_token() { cat "$DIR/$1.pending" 2>/dev/null; }

revert() {
	local kind=$1 token=$2
	[ "$(pending_token "$kind")" = "$token" ] || return 0  # confirmed, or a newer change: keep it
	restore "$kind" || die "$kind: restoring the backup failed"
	activate "$kind" || say "$kind: reactivating the previous file failed"
	rm -f "$DIR/$kind.pending"
	echo "$token" > "$DIR/$kind.reverted"
	say "$kind: change $token was not confirmed; the previous one is back"
}

arm() {
	local kind=$1 token=$2 secs=$3 live new old
	live=$(live_of "$kind") || exit 2
	new="$DIR/$kind.new"
	[ -f "$new" ] || die "$kind: nothing staged at $new"
	old=$(pending_token "$kind")
	if [ -n "$old" ]; then  # an earlier change was never confirmed: undo it before anything else
		stop_timer "$kind"
		revert "$kind" "$old"
	fi
	check "$kind" "$new" || die "$kind: the new file does not pass the check above; nothing was changed"
	rm -f "$DIR/$kind.backup" "$DIR/$kind.absent" "$DIR/$kind.reverted" "$DIR/$kind.confirmed"
	if [ -f "$live" ]; then
		cp -p "$live" "$DIR/$kind.backup" || die "$kind: cannot back up $live; nothing was changed"
	else
		: > "$DIR/$kind.absent"
	fi
	echo "$token" > "$DIR/$kind.pending"
	sync
	stop_timer "$kind"
	if ! systemd-run --quiet --unit="homelab-guard-revert-$kind" --on-active="${secs}s" \
		--timer-property=AccuracySec=1s "$SELF" revert "$kind" "$token"; then
		rm -f "$DIR/$kind.pending" "$DIR/$kind.backup" "$DIR/$kind.absent"
		die "$kind: cannot arm the revert timer (systemd-run); nothing was changed"
	fi
	if ! put "$new" "$live"; then
		stop_timer "$kind"
		revert "$kind" "$token"
		die "$kind: installing $live failed; the previous file is back"
	fi
	if ! activate "$kind"; then
		stop_timer "$kind"
		revert "$kind" "$token"
		die "$kind: activating the new file failed; the previous one is back"
	fi
	say "$kind: change $token is live; it is undone in ${secs}s unless a new login confirms it"
}

confirm() {
	local kind=$1 token=$2
	if [ "$(pending_token "$kind")" = "$token" ]; then
		stop_timer "$kind"
		if [ "$kind" = nft ]; then
			nft list table inet homelab > "$DIR/nft.listing" 2>/dev/null || rm -f "$DIR/nft.listing"
		fi
		rm -f "$DIR/$kind.pending" "$DIR/$kind.backup" "$DIR/$kind.absent" "$DIR/$kind.new"
		echo "$token" > "$DIR/$kind.confirmed"
		say "$kind: change $token confirmed by a new login"
		return 0
	fi
	if [ "$(cat "$DIR/$kind.reverted" 2>/dev/null)" = "$token" ]; then
		echo "homelab-guard: $kind: change $token was already undone (not confirmed in time)" >&2
		exit 3
	fi
	echo "homelab-guard: $kind: change $token is not waiting for a confirmation" >&2
	exit 4
}

status() {
	local state
	for state in pending reverted confirmed; do
		if [ -f "$DIR/$1.$state" ]; then
			echo "$state $(cat "$DIR/$1.$state")"
			return 0
		fi
	done
	echo none
}

boot() {
	local kind token
	for kind in sshd nft; do
		token=$(pending_token "$kind")
		[ -n "$token" ] || continue
		restore "$kind" || continue
		rm -f "$DIR/$kind.pending"
		echo "$token" > "$DIR/$kind.reverted"
		say "$kind: change $token was still unconfirmed at boot; the previous one is back"
	done
}

valid_token() { case "$1" in "" | *[!0-9a-f]*) die "bad token '$1'" ;; esac; }

mkdir -p "$DIR" && chmod 0700 "$DIR" || die "cannot create $DIR"
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
status) [ $# -eq 1 ] || die "usage: status KIND"; live_of "$1" >/dev/null || exit 2; status "$1"; exit 0 ;;
arm | confirm | revert | boot) ;;
*) die "usage: homelab-guard arm KIND TOKEN SECONDS | confirm KIND TOKEN | revert KIND TOKEN | status KIND | boot" ;;
esac
exec 9> /run/homelab-guard.lock || die "cannot open the lock"
flock -w 120 9 || die "another homelab-guard is still running"
case "$cmd" in
arm)
	[ $# -eq 3 ] || die "usage: arm KIND TOKEN SECONDS"
	valid_token "$2"
	case "$3" in "" | *[!0-9]*) die "bad SECONDS '$3'" ;; esac
	arm "$1" "$2" "$3" ;;
confirm | revert)
	[ $# -eq 2 ] || die "usage: $cmd KIND TOKEN"
	valid_token "$2"
	live_of "$1" >/dev/null || exit 2
	"$cmd" "$1" "$2" ;;
boot) boot ;;
esac
"""

GUARD_UNIT_TEXT = """\
# Managed by homelab: undo sshd/firewall changes that were never confirmed (see homelab-guard).
[Unit]
Description=homelab guard: restore unconfirmed sshd/firewall changes
DefaultDependencies=no
After=local-fs.target
Before=sysinit.target homelab-firewall.service ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/homelab-guard boot

[Install]
WantedBy=sysinit.target
"""

FIREWALL_UNIT_TEXT = f"""\
# Managed by homelab: load the firewall (table inet homelab) early at boot.
[Unit]
Description=homelab firewall (nftables table inet homelab)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
After=nftables.service homelab-guard.service
Conflicts=shutdown.target
ConditionPathExists={NFT_LIVE}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f {NFT_LIVE}

[Install]
WantedBy=sysinit.target
"""

LIVE_FILES = {"sshd": DROPIN, "nft": NFT_LIVE}


def token(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]


STATES = ("pending", "reverted", "confirmed")  # the order `status` looks in


def status_read() -> str:
    """`KIND STATE TOKEN` (or `KIND none`) per kind, as `homelab-guard status KIND` prints it,
    read with shell builtins only: a no-op reads this on every host, and running the guard
    script twice cost ~12 processes. A test holds the two to the same answers."""
    states = " ".join(STATES)
    return (f'for k in {" ".join(KINDS)}; do s=none; for st in {states}; do '
            f'if [ -f "{GUARD_DIR}/$k.$st" ]; then t=; read -r t < "{GUARD_DIR}/$k.$st" || true; s="$st $t"; break; '
            'fi; done; echo "$k $s"; done')


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def guard_install_ops() -> tuple[Op, ...]:
    """The script and its boot unit (before any guarded change on a host)."""
    return (
        Op("files.directory", {"path": GUARD_DIR, "user": "root", "group": "root", "mode": "700"}),
        Op("files.put_text", {"content": GUARD_SCRIPT, "dest": GUARD_PATH, "user": "root", "group": "root",
                              "mode": "755"}),
        Op("files.put_text", {"content": GUARD_UNIT_TEXT, "dest": GUARD_UNIT, "user": "root", "group": "root",
                              "mode": "644"}),
        Op("server.shell", {"commands": ["systemctl daemon-reload", "systemctl enable homelab-guard.service"]}),
    )


def arm_command(kind: str, tok: str, window: int) -> str:
    return f"{GUARD_PATH} arm {kind} {tok} {int(window)}"


def guarded_ops(kind: str, content: str, window: int, confirm: Mapping[str, Any]) -> tuple[Op, ...]:
    """Stage `content`; then, in ONE operation, arm it on the host and confirm it through a NEW
    login (else the host reverts it).

    `confirm` says how to log in afresh (see confirm.ConfirmSpec); it holds no secret: a key
    *path*, user names and the pinned *public* host key.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown guarded kind {kind!r}")
    tok = token(content)
    return (
        Op("files.put_text", {"content": content, "dest": f"{GUARD_DIR}/{kind}.new", "user": "root", "group": "root",
                              "mode": "600"}),
        Op("homelab.guarded_apply", {"spec": {**confirm, "kind": kind, "token": tok, "window": int(window)}}),
    )
