"""Run the pyinfra CLI unchanged, counting remote commands (paramiko exec_command calls).

"Plain pyinfra": no TCP_NODELAY, nothing tuned. Prints `remote_commands=N` to stderr at exit.
"""
import atexit
import sys

import paramiko

count = 0
_orig = paramiko.SSHClient.exec_command


def _counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    global count
    count += 1
    return _orig(self, *args, **kwargs)


paramiko.SSHClient.exec_command = _counting  # type: ignore[method-assign]
atexit.register(lambda: print(f"remote_commands={count}", file=sys.stderr))

from pyinfra_cli.main import main  # noqa: E402

sys.argv[0] = "pyinfra"
sys.exit(main())
