"""The 20-operation workload (../shared/research/perf-workload/): the peers' share of the
whole-stack work beyond the base layer. A service account, a directory tree, seven files with
given content (six configs, a systemd unit), a file that must exist, two lines and a managed
block, a symlink, a hosts file, installed packages. The Ansible playbook encodes the same state.
Everything lives under a base directory of each tool's own (host data `base`), so it
collides with nothing homelab manages and the two peers never rewrite each other's files.
"""

CONFIG_FILES = {
    f"etc/homelab/conf.d/{i:02d}-service.conf": (
        f"# managed by homelab\n[service-{i}]\nenabled = true\nport = {8000 + i}\nupstream = 10.0.0.{i}\n"
    )
    for i in range(1, 7)
}

UNIT_FILE = """[Unit]
Description=Homelab demo agent
After=network-online.target

[Service]
ExecStart=/opt/homelab/bin/agent --config /etc/homelab/agent.yaml
Restart=on-failure
User=hlsvc

[Install]
WantedBy=multi-user.target
"""

HOSTS_FILE = "127.0.0.1 localhost\n"
