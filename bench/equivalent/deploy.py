"""Plain pyinfra deploy: the benchmark's peer for homelab's whole stack.

The base layer's resources (hostname, base packages, timezone link + file: 4 operations), then
the 20-operation workload (workload.py): 24 operations per host. Run by bench/noop_apply.py
through bench/equivalent/pyinfra_counting.py.
"""
import sys
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import apt, files, server

sys.path.insert(0, str(Path(__file__).parent))
from workload import CONFIG_FILES, HOSTS_FILE, UNIT_FILE  # noqa: E402

PACKAGES = ["ca-certificates", "curl", "jq", "rsync", "tzdata"]
TZ = "Europe/Berlin"
SUDO = {"_sudo": True}
BASE = host.data.base  # each tool its own tree (bench/noop_apply.py sets it)

# 1-4: the base layer
apt.packages(name="base packages", packages=PACKAGES, update=True, cache_time=3600, **SUDO)
files.link(name="timezone link", path="/etc/localtime", target=f"/usr/share/zoneinfo/{TZ}", force=True, **SUDO)
files.put(name="timezone file", src=StringIO(TZ + "\n"), dest="/etc/timezone", mode="644", **SUDO)
server.hostname(name="hostname", hostname=host.data.homelab_name, **SUDO)

# 5-6: service account
server.group(name="group hlsvc", group="hlsvc", system=True, **SUDO)
server.user(name="user hlsvc", user="hlsvc", group="hlsvc", system=True, create_home=False, home="/nonexistent",
            shell="/usr/sbin/nologin", **SUDO)
# 7-10: directories
files.directory(name="dir conf.d", path=f"{BASE}/etc/homelab/conf.d", mode="755", **SUDO)
files.directory(name="dir state", path=f"{BASE}/var/lib/homelab", mode="750", **SUDO)
files.directory(name="dir bin", path=f"{BASE}/opt/homelab/bin", mode="755", **SUDO)
files.directory(name="dir units", path=f"{BASE}/etc/systemd/system", mode="755", **SUDO)
# 11-16: six config files; 17: a systemd unit
for rel, text in CONFIG_FILES.items():
    files.put(name=f"file {rel}", src=StringIO(text), dest=f"{BASE}/{rel}", mode="644", **SUDO)
files.put(name="unit homelab-agent.service", src=StringIO(UNIT_FILE),
          dest=f"{BASE}/etc/systemd/system/homelab-agent.service", mode="644", **SUDO)
# 18: a file that must exist; 19-20: lines; 21: a managed block; 22: a symlink; 23: a hosts file
files.file(name="log file", path=f"{BASE}/var/lib/homelab/agent.log", mode="640", **SUDO)
files.line(name="hosts nas", path=f"{BASE}/etc/hosts", line="10.0.0.1 nas.lab", **SUDO)
files.line(name="hosts pve", path=f"{BASE}/etc/hosts", line="10.0.0.2 pve.lab", **SUDO)
files.block(name="block agent.yaml", path=f"{BASE}/etc/homelab/agent.yaml",
            content="listen: 0.0.0.0:9100\nlog_level: info", marker="# {mark} HOMELAB MANAGED BLOCK", **SUDO)
files.link(name="link current", path=f"{BASE}/opt/homelab/current", target=f"{BASE}/opt/homelab/bin", **SUDO)
files.put(name="file resolv", src=StringIO(HOSTS_FILE), dest=f"{BASE}/etc/hosts.base", mode="644", **SUDO)
# 24: packages that are installed already (no cache update)
apt.packages(name="apt base packages", packages=["openssh-server", "python3", "ca-certificates", "coreutils"],
             **SUDO)
