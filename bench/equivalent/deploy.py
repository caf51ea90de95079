"""Plain pyinfra deploy equivalent to homelab's base layer (the benchmark's peer).

Same resources homelab's config asks for: hostname, base packages, timezone link + file.
Run by bench/noop_apply.py through bench/equivalent/pyinfra_counting.py.
"""
from io import StringIO

from pyinfra import host
from pyinfra.operations import apt, files, server

PACKAGES = ["ca-certificates", "curl", "jq", "rsync", "tzdata"]
TZ = "Europe/Berlin"

apt.packages(name="base packages", packages=PACKAGES, update=True, cache_time=3600, _sudo=True)
files.link(name="timezone link", path="/etc/localtime", target=f"/usr/share/zoneinfo/{TZ}", force=True, _sudo=True)
files.put(name="timezone file", src=StringIO(TZ + "\n"), dest="/etc/timezone", mode="644", _sudo=True)
server.hostname(name="hostname", hostname=host.data.homelab_name, _sudo=True)
