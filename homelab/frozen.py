"""The one-file executable's own process environment.

PyInstaller's bootloader points LD_LIBRARY_PATH at the bundle's private libraries (its own
libcrypto, libz, ...) and keeps what was there before in LD_LIBRARY_PATH_ORIG. Every child
process inherits that, so the system's programs would load the bundle's libraries: on a trixie
host `hostnamectl` failed with "libcrypto.so.3: version OPENSSL_3.4.0 not found". homelab starts
system programs all the time (probe scripts, pyinfra's @local connector), so the frozen entry
point gives its children the environment the person started it with. (Our own worker is the
executable again: its bootloader sets its path anew.)
"""
from __future__ import annotations

from typing import MutableMapping

LOADER_VARS = ("LD_LIBRARY_PATH",)


def restore_system_env(environ: MutableMapping[str, str]) -> None:
    for name in LOADER_VARS:
        original = environ.pop(f"{name}_ORIG", None)
        if original is not None:
            environ[name] = original
        else:
            environ.pop(name, None)
