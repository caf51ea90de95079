"""Talking to things outside the hosts: the Hetzner Cloud API (hcloud_api is the only module
importing `hcloud`), pricing and cost arithmetic, key generation, waiting for SSH."""
