"""The pyinfra worker: a child process that runs host operations and streams JSON events.

Why a child process: pyinfra 3 is gevent-based and needs monkey-patching to run hosts in
parallel; patching the CLI's or the TUI's own process would break threads and Textual. The
child is ours alone, so it patches freely, sets TCP_NODELAY on paramiko's sockets, and its
job (hosts, operations, file contents) arrives on stdin, never in process arguments.

Input (stdin, one JSON object):
  {"hosts": [{"name", "address", "port", "user", "key_path", "sudo"}],  (address "local": @local)
   "known_hosts": "<known_hosts text>", "ops": {"<host>": [["apt.packages", {...}], ...]},
   "parallel": 10, "redact": ["<secret values to mask in output>"]}
Output (stdout, JSON lines): {"event": "connect_error"|"op_ok"|"op_error"|"output"|"done", ...}
"""
from __future__ import annotations

# gevent must patch before anything else imports socket/threading
from gevent import monkey

monkey.patch_all()

import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from typing import Any, Callable  # noqa: E402

import paramiko  # noqa: E402

_orig_transport_init = paramiko.Transport.__init__


def _transport_init_nodelay(self: paramiko.Transport, sock: Any, *args: Any, **kwargs: Any) -> None:
    _orig_transport_init(self, sock, *args, **kwargs)
    try:
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        pass


paramiko.Transport.__init__ = _transport_init_nodelay  # type: ignore[method-assign]

os.environ.setdefault("PYINFRA_PROGRESS", "off")

from pyinfra.api import BaseStateCallback, Config, Inventory, State, StringCommand  # noqa: E402
from pyinfra.api.connect import connect_all, disconnect_all  # noqa: E402
from pyinfra.api.exceptions import PyinfraError  # noqa: E402
from pyinfra.api.operation import add_op  # noqa: E402
from pyinfra.api.operations import run_ops  # noqa: E402
from pyinfra.operations import apt, files, python, server, systemd  # noqa: E402
from pyinfra.connectors.ssh import SSHConnector  # noqa: E402


def as_lost_connection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """paramiko raises EOFError when a host's connection is cut mid-command; pyinfra handles
    only OSError/SSHException per host, so an EOFError ended the whole worker and with it the
    other hosts' work (seen in the SSH-cut drill). As SSHException it fails that host only."""
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EOFError as exc:
            raise paramiko.SSHException(f"the SSH connection was lost ({type(exc).__name__})") from exc

    return wrapped


for _name in ("run_shell_command", "put_file", "get_file"):
    setattr(SSHConnector, _name, as_lost_connection(getattr(SSHConnector, _name)))

from pyinfra.connectors.local import LocalConnector  # noqa: E402

from homelab.hosts import LOCAL  # noqa: E402
from homelab.provision import file_writes  # noqa: E402
from homelab.provision.apt_lock import timeout_from_env, uses_apt, with_lock_timeout  # noqa: E402

_out_lock_free = True  # gevent: writes from greenlets do not interleave within one write()
REDACT: list[str] = []


def name_of(host: Any) -> str:
    """homelab's name of a pyinfra host (the machine we run on is pyinfra's `@local`)."""
    return str(host.data.get("homelab_name") or host.name)


def emit(**event: Any) -> None:
    line = json.dumps(event)
    for value in REDACT:
        line = line.replace(value, "[REDACTED]")
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _put_text(content: str, **kwargs: Any) -> Any:
    """files.put from a string (our ops are data; file contents travel as text)."""
    return files.put(src=io.StringIO(content), **kwargs)


# host -> why a Python-side operation failed (its message becomes the op_error's error)
CALLBACK_ERRORS: dict[str, str] = {}


def _size_of(filename_or_io: Any) -> int:
    if isinstance(filename_or_io, io.StringIO):
        return len(filename_or_io.getvalue().encode())
    if isinstance(filename_or_io, (str, os.PathLike)):
        try:
            return os.path.getsize(filename_or_io)
        except OSError:
            return 0
    return 0


def atomic_put(put_file: Callable[..., Any]) -> Callable[..., Any]:
    """A connector's put_file that replaces the destination whole or not at all
    (homelab.provision.file_writes): on a full disk the old file stays and the op's error says
    "no space left on <mount> on <host>"."""
    def wrapped(self: Any, filename_or_io: Any, remote_filename: Any, remote_temp_filename: Any = None,
                print_output: bool = False, print_input: bool = False, **arguments: Any) -> bool:
        import secrets

        dest = str(remote_filename)
        temp = file_writes.temp_beside(dest, secrets.token_hex(4))
        # the sudo path's staging file in /tmp: named here so a failed copy can remove it too
        staging = remote_temp_filename or self.host.get_temp_filename(dest)
        error = ""
        try:
            ok = put_file(self, filename_or_io, temp, remote_temp_filename=staging, print_output=print_output,
                          print_input=print_input, **arguments)
        except (OSError, paramiko.SSHException) as exc:  # SFTP says only "Failure" on ENOSPC
            ok, error = False, str(exc)
        if ok:
            ok, out = self.run_shell_command(StringCommand(file_writes.render_move_into_place(temp, dest)),
                                             **arguments)
            error = "" if ok else out.stderr
        if ok:
            return True
        self.run_shell_command(StringCommand(file_writes.render_cleanup(temp, staging)), **arguments)
        probed, out = self.run_shell_command(StringCommand(file_writes.render_space_probe(dest)), **arguments)
        space = file_writes.parse_space(out.stdout) if probed else None
        host = name_of(self.host)
        message, hint = file_writes.render_failure(host, dest, _size_of(filename_or_io), space, error)
        CALLBACK_ERRORS[host] = f"{message} ({hint})"
        return False

    return wrapped


for _connector in (SSHConnector, LocalConnector):
    _connector.put_file = atomic_put(_connector.put_file)  # type: ignore[method-assign]


def _guarded_apply(spec: dict[str, Any]) -> Any:
    """Layer 2's guarded change (sshd, firewall): arm it on the host through this session, then
    confirm it through a NEW login from here, in one operation (no other host's operation can
    run in between and eat the host's revert window)."""
    from homelab.provision.confirm import arm_and_confirm

    host_name = str(spec.get("host", ""))

    def apply(state: State, host: Any) -> None:
        def run_on_host(command: str) -> tuple[bool, str]:
            ok, output = host.run_shell_command(StringCommand(command), _sudo=bool(host.data.get("_sudo")),
                                                _timeout=300)
            return bool(ok), output.output

        try:
            for line in arm_and_confirm(spec, run_on_host):
                emit(event="output", host=host_name, line=line)
        except Exception as exc:  # reported through op_error, with the hint when there is one
            hint = getattr(exc, "hint", "")
            CALLBACK_ERRORS[host_name] = f"{exc} ({hint})" if hint else str(exc)
            raise

    return python.call(function=apply)


def _apt_lock_wait(host_name: str, timeout: int) -> Any:
    """Wait until no apt/dpkg lock is held on the host (homelab.provision.apt_lock), telling
    who holds it while waiting; past `timeout` seconds fail the host, naming the holder."""
    import time

    from homelab.provision.apt_lock import (POLL_EVERY, PROGRESS_EVERY, parse_holders, render_holders_probe,
                                            render_timeout_error, render_waiting)
    probe = render_holders_probe()

    def wait(state: State, host: Any) -> None:
        start = time.monotonic()
        told = -PROGRESS_EVERY
        while True:
            ok, output = host.run_shell_command(StringCommand(probe), _sudo=bool(host.data.get("_sudo")),
                                                _timeout=60)
            holders = parse_holders(output.stdout) if ok else ()
            waited = time.monotonic() - start
            if not holders:
                return
            if waited >= timeout:
                message, hint = render_timeout_error(host_name, holders, timeout)
                CALLBACK_ERRORS[host_name] = f"{message} ({hint})"
                raise RuntimeError(message)
            if waited - told >= PROGRESS_EVERY:
                told = waited
                emit(event="progress", host=host_name, message=render_waiting(host_name, holders, waited, timeout))
            time.sleep(min(POLL_EVERY, max(0.1, timeout - waited)))

    return python.call(function=wait)


# The only operations a job may name: a whitelist, not getattr on arbitrary modules.
OPERATIONS: dict[str, Callable[..., Any]] = {
    "apt.packages": apt.packages,
    "apt.update": apt.update,
    "files.put_text": _put_text,
    "files.put_file": files.put,  # src: a file on the operator's machine (a bundle of images)
    "files.directory": files.directory,
    "files.file": files.file,
    "files.line": files.line,
    "files.link": files.link,
    "files.block": files.block,
    "server.hostname": server.hostname,
    "server.shell": server.shell,
    "server.user": server.user,
    "server.group": server.group,
    "server.sysctl": server.sysctl,
    "systemd.service": systemd.service,
    "systemd.daemon_reload": systemd.daemon_reload,
    "homelab.guarded_apply": _guarded_apply,
}


class Callbacks(BaseStateCallback):
    def __init__(self, index: dict[str, tuple[str, int]]) -> None:
        self.index = index  # op_hash -> (host, op index)
        self.failed: list[tuple[Any, str]] = []  # (host, op_hash) in the order they failed

    @staticmethod
    def host_connect_error(state: State, host: Any, error: Any) -> None:
        emit(event="connect_error", host=name_of(host), error=str(error))

    def operation_host_success(self, state: State, host: Any, op_hash: str,  # type: ignore[override]
                               retry_count: int = 0) -> None:
        # (the op's meta is completed only after this callback: no did_change() here)
        idx = self._index(host, op_hash)
        if idx is not None:
            emit(event="op_ok", host=name_of(host), index=idx)

    def operation_host_error(self, state: State, host: Any, op_hash: str, retry_count: int = 0,  # type: ignore[override]
                             max_retries: int = 0) -> None:
        # pyinfra completes the op's meta (its output) only after this callback: report the
        # failure once the run is over (`report_errors`), with what the command printed
        self.failed.append((host, op_hash))

    def report_errors(self, state: State) -> None:
        for host, op_hash in self.failed:
            out: list[str] = []
            err: list[str] = []
            try:
                meta = state.ops[host][op_hash].operation_meta
                out, err = list(meta.stdout_lines), list(meta.stderr_lines)
            except Exception:  # output is missing when the command never ran
                pass
            # the cause is usually the first thing a failing script says on stderr, the outcome
            # its last lines: keep both ends when there is much of it
            shown = err if len(err) <= 30 else [*err[:15], f"... ({len(err) - 30} lines, see the run log)", *err[-15:]]
            for line in [*out[-5:], *shown]:
                emit(event="output", host=name_of(host), line=line)
            first = next((ln for ln in err if ln.strip()), None)
            error = CALLBACK_ERRORS.pop(name_of(host), None) or first or (out[-1] if out else "operation failed")
            emit(event="op_error", host=name_of(host), index=self._index(host, op_hash), error=error)
        self.failed.clear()

    def _index(self, host: Any, op_hash: str) -> int | None:
        entry = self.index.get(f"{name_of(host)}:{op_hash}")
        return entry[1] if entry else None


def run(job: dict[str, Any]) -> int:
    REDACT.extend(v for v in job.get("redact", []) if v)
    if not job.get("hosts"):
        emit(event="done")
        return 0
    with tempfile.TemporaryDirectory(prefix="homelab-") as tmp:
        known_hosts = os.path.join(tmp, "known_hosts")
        with open(known_hosts, "w") as fh:
            fh.write(job.get("known_hosts", ""))
        hosts = []
        for h in job["hosts"]:
            if h["address"] == LOCAL:
                # pyinfra's local connector: subprocesses on this machine; root already, or sudo
                hosts.append(("@local", {"homelab_name": h["name"], "_sudo": os.geteuid() != 0}))
                continue
            data: dict[str, Any] = {
                "ssh_hostname": h["address"],
                "ssh_port": h.get("port", 22),
                "ssh_user": h["user"],
                "ssh_known_hosts_file": known_hosts,
                "ssh_strict_host_key_checking": "yes",  # pinned keys only; never accept new here
                "ssh_look_for_keys": False,
                "ssh_allow_agent": bool(os.environ.get("SSH_AUTH_SOCK")),
                "_sudo": bool(h.get("sudo")),
            }
            if h.get("key_path"):
                data["ssh_key"] = os.path.expanduser(h["key_path"])
            hosts.append((h["name"], data))
        inventory = Inventory((hosts, {}))
        config = Config(PARALLEL=int(job.get("parallel", 10)), FAIL_PERCENT=None)
        state = State(inventory, config)
        # keep going when a host fails: the other hosts must still converge
        state.should_raise_failed_hosts = lambda _state: False
        index: dict[str, tuple[str, int]] = {}
        callbacks = Callbacks(index)
        state.add_callback_handler(callbacks)
        connect_all(state)
        apt_timeout = timeout_from_env()
        for host in inventory:
            if host not in state.activated_hosts:
                continue
            for i, (name, kwargs) in enumerate(job["ops"].get(name_of(host), [])):
                func = OPERATIONS.get(name)
                if func is None:
                    emit(event="op_error", host=name_of(host), index=i, error=f"unknown operation {name}")
                    break
                if uses_apt(name, kwargs):  # the apt/dpkg locks free first, a bounded wait
                    add_op(state, _apt_lock_wait, host=host, host_name=name_of(host), timeout=apt_timeout)
                    kwargs = with_lock_timeout(name, kwargs, apt_timeout)
                results = add_op(state, func, host=host, **kwargs)
                op_meta = results.get(host)
                if op_meta is not None:
                    index[f"{name_of(host)}:{op_meta._hash}"] = (name_of(host), i)
        try:
            run_ops(state)
        except PyinfraError as exc:  # "No hosts remaining!" once every host failed
            callbacks.report_errors(state)
            emit(event="run_error", error=str(exc))
        finally:
            callbacks.report_errors(state)
            disconnect_all(state)
    emit(event="done")
    return 0


def main() -> int:
    job = json.loads(sys.stdin.read())
    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
