"""The headless front end: `homelab validate|plan|apply|status|destroy CONFIG`, `homelab lab ...`.

It parses arguments and renders engine events; all behaviour lives in the engine. It never
imports Textual (tests check that in a subprocess): `homelab` with no arguments starts the
TUI through a lazy import.

Exit codes (EXIT_CODES, shown by --help): each means one thing. 2 stays "bad config or
usage" (argparse's own code), so `plan` says "changes pending" with 3, not with 2 as
Terraform's -detailed-exitcode does. A reader that leaves early (`| head`) is not an error:
output stops, the command still finishes, and its code is its result.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from homelab import __version__
from homelab.errors import ConfigError, HomelabError, UsageError

log = logging.getLogger("homelab")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    done, or nothing to do (plan: no changes)
  {EXIT_FAILED}    failed: a host, a change or the plan failed; status: a monitor FAILs
  {EXIT_USAGE}    bad config or command line; nothing was touched
  {EXIT_CHANGES}    plan: changes pending (apply would change something)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""
MAX_PARALLEL = 64  # each host worked on at once holds an SSH connection and a thread


def _parallel(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PARALLEL:
        raise argparse.ArgumentTypeError(f"should be a number 1-{MAX_PARALLEL}, not {text[:20]!r}")
    return n


def _seconds(text: str) -> float:
    try:
        secs = float(text)
    except ValueError:
        secs = -1.0
    if not 0 <= secs <= 3600:
        raise argparse.ArgumentTypeError(f"should be seconds 0-3600, not {text[:20]!r}")
    return secs


def _add_wait(p: argparse.ArgumentParser) -> None:
    from homelab.hosts import WAIT_FOR_HOSTS_S

    p.add_argument("--wait-for-hosts", type=_seconds, default=WAIT_FOR_HOSTS_S, metavar="SECONDS",
                   help="keep trying a machine homelab reached before that does not answer now, as while it "
                        f"reboots (default {WAIT_FOR_HOSTS_S:g}; 0: report it unreachable at once)")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="path to config.yaml")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from homelab import registry

    p.add_argument("--layer", action="append", default=[], metavar="NAME",
                   help=f"only this layer (repeatable): {registry.layer_help()}")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="pin host keys of machines never seen before (check fingerprints first)")
    p.add_argument("--parallel", type=_parallel, default=10, metavar="N",
                   help=f"hosts worked on at once, 1-{MAX_PARALLEL} (default 10)")
    p.add_argument("-v", "--verbose", action="store_true", help="also show what is unchanged and why")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `command` (a core command about to run), layers' extra commands
    are listed by name only: their modules (the mesh layer, ...) are imported for nothing else,
    and every `validate` would pay for them."""
    parser = argparse.ArgumentParser(
        prog="homelab",
        description="Bare machines and Hetzner Cloud servers to running, backed-up, monitored apps. "
                    "With no command, opens the interactive TUI (on a terminal).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"homelab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check a config; touches no host")
    _add_config(p)
    p = sub.add_parser("plan", help=f"show what apply would change, layer by layer "
                                    f"(exit {EXIT_CHANGES}: changes pending, 0: none)",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_config(p)
    _add_run_options(p)
    p.add_argument("--out", metavar="FILE", help="also save the plan: `homelab apply FILE` applies exactly it, "
                                                 "and refuses if the config or the hosts changed since")
    p = sub.add_parser("apply", help="make the machines match the config (or apply a plan saved with --out)")
    p.add_argument("config", help="path to config.yaml, or a plan saved by `homelab plan --out`")
    _add_run_options(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask (needed when not on a terminal)")
    p.add_argument("--confirm-delete", action="store_true",
                   help="also perform planned deletes of servers (never implied by --yes)")
    p.add_argument("--bundle", metavar="FILE", help="images for hosts that cannot pull (`homelab apps bundle`)")
    p.add_argument("--purge-data", action="store_true",
                   help="also delete the data of apps removed from the config (needs --confirm-delete too)")
    _add_wait(p)
    p = sub.add_parser("status", help="live monitors of every layer (exit 1 on FAIL)")
    _add_config(p)
    _add_run_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("destroy", help="plan and remove what homelab created (cloud servers)")
    _add_config(p)
    _add_run_options(p)
    p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("--confirm-delete", action="store_true")
    p = sub.add_parser("forget-host", help="forget what homelab learned about a machine: host key, login, address, facts (after a reinstall)")
    _add_config(p)
    p.add_argument("host")
    p = sub.add_parser("tui", help="open the interactive TUI (the default with no command)")
    p.add_argument("config", nargs="?", help="config to open (default: start the wizard)")
    if command in COMMANDS:  # the others by name only: their parsers import what they use
        for name in ("lab", *_extra_command_names()):
            sub.add_parser(name)
        return parser
    from homelab.lab import cli as lab_cli

    lab_cli.add_arguments(sub)
    extra = _extra_commands()
    for name, (help_text, add_args, _run) in extra.items():
        p = sub.add_parser(name, help=help_text)
        add_args(p)
    return parser


def _extra_command_names() -> list[str]:
    from homelab import registry

    return [name for entry in registry.built() for name, _ in entry.commands]


def _extra_commands() -> dict[str, tuple[str, Any, Any]]:
    """Commands contributed by layers (e.g. `mesh rotate`), named by their registry entries."""
    from homelab import registry

    out: dict[str, tuple[str, Any, Any]] = {}
    for entry in registry.built():
        for name, ref in entry.commands:
            out[name] = registry.resolve(ref)
    return out


def _options(args: argparse.Namespace, interactive: bool) -> Any:
    from homelab.layers.base import RunOptions

    def confirm_key(target: Any, key: str) -> bool:
        from homelab.ssh import fingerprint
        print(f"{target.name} ({target.address}) offers host key {fingerprint(key)}", file=sys.stderr)
        answer = input("Pin this host key? [y/N] ").strip().lower()
        return answer in ("y", "yes")

    return RunOptions(
        accept_new_host_keys=getattr(args, "accept_new_host_keys", False),
        confirm_new_host_key=confirm_key if interactive else None,
        yes=getattr(args, "yes", False),
        confirm_destructive=getattr(args, "confirm_delete", False),
        purge_data=getattr(args, "purge_data", False),
        bundle=getattr(args, "bundle", None),
        layers=tuple(getattr(args, "layer", []) or ()),
        parallel=max(1, getattr(args, "parallel", 10)),
        # plan and status say what is true now; destroy deletes through the cloud API, whether
        # the server answers or not
        wait_for_hosts=getattr(args, "wait_for_hosts", 0.0),
        api_endpoint=os.environ.get("HOMELAB_HCLOUD_ENDPOINT") or None,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from homelab.config import load_config

    cfg = load_config(args.config, needs_hosts=True)
    hosts = len(cfg.machines)
    print(f"{args.config}: valid ({hosts} machine(s), sections: {', '.join(cfg.sections) or 'none'})")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.drive import drive
    from homelab.engine import Engine
    from homelab.render_text import TextRenderer
    from homelab.reviewed import ReviewedPlan

    cfg = load_config(args.config, needs_hosts=True)
    engine = Engine(cfg, _options(args, sys.stdin.isatty()), args.log_path)
    run = drive(engine.plan(), TextRenderer(sys.stdout, sys.stderr, args.verbose))
    if not run.ok or run.blocked:
        return EXIT_FAILED
    if args.out:
        out = Path(args.out)
        ReviewedPlan.of(cfg.path, cfg.digest, run.plans).save(out)
        print(f"saved the plan to {out}: `homelab apply {out}` applies exactly it", file=sys.stderr)
    return EXIT_CHANGES if run.changes else EXIT_OK


def _review(engine: Any, renderer: Any) -> Any:
    """Plan and show it: the reviewed plan, or None when planning failed or is blocked."""
    from homelab.drive import drive
    from homelab.reviewed import ReviewedPlan

    run = drive(engine.plan(), renderer)
    if not run.ok or run.blocked:
        return None
    return ReviewedPlan.of(engine.config.path, engine.config.digest, run.plans)


def cmd_apply(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.drive import drive
    from homelab.engine import Engine
    from homelab.render_text import TextRenderer
    from homelab.reviewed import load_plan_file

    saved = load_plan_file(Path(args.config))
    cfg = load_config(saved.config_path if saved else args.config, needs_hosts=True)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not args.yes and not interactive and saved is None:
        raise UsageError("apply needs --yes when not run on a terminal", "run `homelab plan` first, then apply --yes")
    renderer = TextRenderer(sys.stdout, sys.stderr, args.verbose)
    options = _options(args, interactive)
    reviewed = saved
    if saved is not None:  # reviewed already, when it was made: apply exactly that
        print(f"applying the saved plan {args.config} ({saved.changes} change(s)) to {cfg.path}", file=sys.stderr)
    elif not args.yes:
        reviewed = _review(Engine(cfg, options, args.log_path), renderer)
        if reviewed is None:
            return 1
        if reviewed.changes == 0:
            print("nothing to do", file=sys.stderr)
            return 0
        if input(f"Apply {reviewed.changes} change(s)? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not applied", file=sys.stderr)
            return 1
    run = drive(Engine(cfg, options, args.log_path).apply(reviewed), renderer)
    return 0 if run.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.drive import drive
    from homelab.engine import Engine
    from homelab.model import Health
    from homelab.render_text import TextRenderer

    cfg = load_config(args.config, needs_hosts=True)
    engine = Engine(cfg, _options(args, False), args.log_path)
    renderer = None if args.json else TextRenderer(sys.stdout, sys.stderr, args.verbose)
    run = drive(engine.status(), renderer)
    finished, statuses = run.finished, run.statuses
    monitors = [m for s in statuses for m in s.monitors]
    failing = any(m.health is Health.FAIL for m in monitors)
    if args.json:
        # "ok" answers "is everything fine?": a FAIL anywhere says no, even if the run itself went well
        doc = {"ok": bool(finished and finished.ok) and not failing,
               "layers": {s.layer: [m.to_json() for m in s.monitors] for s in statuses}}
        print(json.dumps(doc, indent=2))
    if failing:
        return EXIT_FAILED
    return EXIT_OK if finished is not None else EXIT_FAILED


def cmd_destroy(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.render_text import TextRenderer
    from homelab.drive import drive
    from homelab.teardown import has_anything_to_destroy, teardown_config

    cfg = load_config(args.config)
    if not has_anything_to_destroy(cfg):
        print("nothing to destroy: homelab created no cloud servers for this config "
              "(adopted machines are never wiped)", file=sys.stderr)
        return 0
    target = teardown_config(cfg)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    options = _options(args, interactive)
    options.layers = ("compute",)  # only servers go; nothing is configured on the way out
    renderer = TextRenderer(sys.stdout, sys.stderr, args.verbose)
    reviewed = _review(Engine(target, options, args.log_path), renderer)
    if reviewed is None:
        return 1
    n = reviewed.changes
    if n == 0:
        print("nothing to destroy", file=sys.stderr)
        return 0
    if not args.confirm_delete:
        raise UsageError(f"destroy would delete {n} resource(s): add --confirm-delete to do it",
                         "read the plan above first; deletes are never implied by --yes")
    if not args.yes:
        if not interactive:
            raise UsageError("destroy needs --yes when not run on a terminal")
        if input(f"Delete {n} resource(s)? Type 'delete' to confirm: ").strip() != "delete":
            print("nothing deleted", file=sys.stderr)
            return 1
    return 0 if drive(Engine(target, options, args.log_path).apply(reviewed), renderer).ok else 1


def cmd_forget_host(args: argparse.Namespace) -> int:
    from homelab.config import load_config
    from homelab.state import RunLock, State

    cfg = load_config(args.config)
    with RunLock(cfg.state_path) as lock:
        lock.acquire("forget-host")
        state = State.load(cfg.state_path)
        hosts = state.data.get("hosts", {})
        if not hosts.get(args.host):
            raise UsageError(f"homelab has learned nothing about {args.host}",
                             f"known: {', '.join(sorted(hosts)) or 'none'}")
        # everything learned from the machine goes: its key, the login an apply left (user,
        # port), its address and facts; the next run meets it as the config describes it
        forgotten = sorted(hosts.pop(args.host))
        state.save()
    print(f"forgot what homelab learned about {args.host} ({', '.join(forgotten)}); the next run logs in as "
          "the config says and asks about its host key again (or --accept-new-host-keys)")
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # a cron job or a pipe would otherwise get a full-screen app waiting for keys forever
        raise UsageError("the TUI needs a terminal, and this is not one",
                         "run a command instead, e.g. homelab validate config.yaml (see homelab --help)")
    try:
        from homelab.tui.app import run_tui  # lazy: the headless path never imports Textual
    except ImportError as exc:
        raise HomelabError(f"the TUI is not available: {exc}", "use the headless commands: homelab --help") from None
    return run_tui(getattr(args, "config", None))


COMMANDS = {
    "validate": cmd_validate, "plan": cmd_plan, "apply": cmd_apply, "status": cmd_status,
    "destroy": cmd_destroy, "forget-host": cmd_forget_host, "tui": cmd_tui,
}


class _ClosedOk:
    """stdout/stderr that shrug off a reader who left (`homelab status | head -3`).

    On the first broken pipe the stream's descriptor is pointed at /dev/null: later writes,
    and Python's flush at exit, then go nowhere instead of raising. The command itself runs
    on (an apply is never cut short because its pager closed)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.closed_early = False

    def _gone(self) -> None:
        self.closed_early = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (a test's StringIO): dropping the text is all we can do

    def write(self, text: str) -> int:
        if not self.closed_early:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        if not self.closed_early:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ClosedOk(out), _ClosedOk(err)
    try:
        return _main(argv)
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = out, err


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["__pyinfra-worker"]:  # the frozen binary runs its own pyinfra worker
        from homelab.provision.worker import main as worker_main
        return worker_main()
    if argv == ["--version"]:  # asked by scripts and installers: answer before any other import
        print(f"homelab {__version__}")
        return 0
    parser = build_parser(argv[0] if argv else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    command = args.command or "tui"
    from homelab.runlog import start_run_log, stop_run_log

    log_path, handler, why = start_run_log(command)
    if why:
        print(f"warning: running without a run log: {why}", file=sys.stderr)
    args.log_path = log_path
    try:
        if command == "lab":
            from homelab.lab import cli as lab_cli
            args.homelab_main = main
            return lab_cli.run(args)
        if command in COMMANDS:
            return COMMANDS[command](args)
        return int(_extra_commands()[command][2](args))
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except HomelabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        if exc.exit_code != EXIT_USAGE and log_path:
            print(f"log: {log_path}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # an unwritable state or home directory, a full disk: not a bug
        log.error("%s\n%s", exc, traceback.format_exc())
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        print("hint: check that this path exists, is yours to write, and that its disk has room", file=sys.stderr)
        if log_path:
            print(f"log: {log_path}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # the top: show one line, keep the traceback in the log
        log.error("unexpected error\n%s", traceback.format_exc())
        print(f"error: unexpected {type(exc).__name__}; this is a bug in homelab", file=sys.stderr)
        if log_path:
            print(f"log: {log_path} (the traceback is there; please attach it to a bug report)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if handler is not None:
            stop_run_log(handler)


if __name__ == "__main__":
    raise SystemExit(main())
