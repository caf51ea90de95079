"""The interactive front end: a wizard for new configs, plan review, apply and a live dashboard.

It renders the same engine events as the CLI and holds no provisioning logic. Nothing here
imports pyinfra, hcloud or paramiko at import time: the engine is imported inside the
worker thread that runs it (see `sources.EngineSource`).
"""
