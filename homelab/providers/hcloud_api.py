"""The Hetzner Cloud API, through the `hcloud` library: the only module that imports it.

It returns our own frozen dataclasses, never `hcloud` objects, and turns every failure into a
HomelabError that says what was being done ("create server web-1: ...").

API hygiene, because Hetzner has closed accounts over clients that retried without end:
- The library's own retries are switched off (they would retry a timed-out POST /servers
  into a second server, and they ignore the rate-limit headers). We retry here instead:
  bounded tries, jittered exponential backoff, a total waiting budget, 429 honoured.
- A create is never retried blindly: when the outcome is unknown (timeout, 5xx) we look the
  server up by name first, and a `uniqueness_error` means "it exists": we adopt it if it
  carries our labels.
- Every wait has a deadline: HTTP timeouts per request, action polling, SSH.
"""
from __future__ import annotations

import ipaddress
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

import requests
from hcloud import APIException, Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import Server as HServer
from hcloud.ssh_keys import SSHKey
from hcloud.volumes import Volume as HVolume

from homelab.errors import HomelabError
from homelab.providers.retry import Attempts, RetryPolicy, describe_reset, not_there, rate_limit_wait
from homelab.secrets import Secret

log = logging.getLogger("homelab")

T = TypeVar("T")

# Hetzner error codes worth another try (the request was not carried out).
RETRY_CODES = {"rate_limit_exceeded", "conflict", "timeout", "bad_gateway", "locked", "service_error", "maintenance"}
RETRY_HTTP = {429, 502, 503, 504}
HTTP_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)


@dataclass(frozen=True)
class CloudServer:
    id: int
    name: str
    type: str
    location: str
    status: str
    ipv4: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    protected: bool = False
    backups: bool = False
    image: str | None = None
    architecture: str | None = None
    ipv6: str | None = None  # the server's address in its /64 (server_ipv6)


def server_ipv6(network: str | None) -> str | None:
    """A server's primary IPv6 is a /64 ("2001:db8:1::/64"); Hetzner's images configure its
    first address (…::1) on the public interface: that one gets AAAA records."""
    if not network:
        return None
    return str(ipaddress.IPv6Network(network, strict=False)[1])


@dataclass(frozen=True)
class CloudVolume:
    id: int
    name: str
    size_gb: int
    location: str
    server_id: int | None  # the server it is attached to
    linux_device: str  # /dev/disk/by-id/scsi-0HC_Volume_<id>
    labels: Mapping[str, str] = field(default_factory=dict)
    protected: bool = False
    status: str = ""  # creating | available


@dataclass(frozen=True)
class CloudKey:
    id: int
    name: str
    fingerprint: str
    public_key: str


@dataclass(frozen=True)
class TokenCheck:
    valid: bool
    read_write: bool
    detail: str


@dataclass(frozen=True)
class Clock:
    """Time as the provider sees it (tests pass a fake one: no real sleeping)."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    epoch: Callable[[], float] = time.time
    rand: Callable[[], float] = random.random


def _server(s: Any) -> CloudServer:
    ipv4 = s.public_net.ipv4.ip if s.public_net is not None and s.public_net.ipv4 is not None else None
    ipv6 = s.public_net.ipv6.ip if s.public_net is not None and s.public_net.ipv6 is not None else None
    prot = s.protection or {}
    return CloudServer(
        id=int(s.id), name=s.name, type=s.server_type.name if s.server_type else "", status=s.status or "",
        location=s.location.name if s.location else "", ipv4=ipv4, labels=dict(s.labels or {}),
        protected=bool(prot.get("delete")), backups=s.backup_window is not None,
        image=s.image.name if s.image is not None else None,
        architecture=s.server_type.architecture if s.server_type else None, ipv6=server_ipv6(ipv6))


def _volume(v: Any) -> CloudVolume:
    return CloudVolume(id=int(v.id), name=v.name, size_gb=int(v.size), location=v.location.name if v.location else "",
                       server_id=int(v.server.id) if v.server is not None else None,
                       linux_device=v.linux_device or "", labels=dict(v.labels or {}),
                       protected=bool((v.protection or {}).get("delete")), status=v.status or "")


def _cloud_key(k: Any) -> CloudKey:
    """hcloud types every field of a bound object Optional (it may be a stub); like `_server`,
    read what a key the API returned always has."""
    return CloudKey(int(k.id), k.name, k.fingerprint, k.public_key)


class HcloudApi:
    """One API client for one run. All calls are synchronous and bounded in time."""

    def __init__(self, token: Secret, endpoint: str, *, policy: RetryPolicy | None = None,
                 clock: Clock | None = None, poll_cap: float = 2.0, client: Client | None = None) -> None:
        self.endpoint = endpoint
        self.policy = policy or RetryPolicy()
        self.clock = clock or Clock()
        self.poll_cap = poll_cap
        self._last_headers = threading.local()
        self.client = client or Client(token=token.reveal(), api_endpoint=endpoint, timeout=HTTP_TIMEOUT,
                                       application_name="homelab")
        self._own_the_retries()

    def _own_the_retries(self) -> None:
        """Switch off hcloud's internal retries and keep each answer's rate-limit headers.

        Both use hcloud internals (`Client._client`); tests/unit/test_hcloud_retry.py fails if a
        new hcloud renames them, instead of silently double-retrying.
        """
        base = self.client._client  # noqa: SLF001 - see docstring
        base._retry_max_retries = 0  # noqa: SLF001
        store = self._last_headers

        def keep_headers(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
            store.headers = dict(response.headers)
            return response

        base._session.hooks["response"].append(keep_headers)  # noqa: SLF001

    # ------------------------------------------------------------------ calls --
    def _headers(self) -> Mapping[str, str]:
        return getattr(self._last_headers, "headers", {}) or {}

    def call(self, what: str, fn: Callable[[], T], *, idempotent: bool = True,
             recover: Callable[[], T | None] | None = None) -> T:
        """Run `fn` with bounded retries. Non-idempotent calls are retried only when the API
        certainly did not act (429 and friends); after an unknown outcome `recover` looks for
        the result first (e.g. the server a timed-out create did make)."""
        attempts = Attempts(self.policy, self.clock.monotonic, self.clock.rand)
        while True:
            unsure = False
            try:
                return fn()
            except APIException as exc:
                code = exc.code
                if code in ("unauthorized",):
                    raise HomelabError(f"{what}: the Hetzner API refused the token ({exc.message})",
                                       "check the token: privilege.hcloud_token says where it is read from") from exc
                if code in ("token_readonly", "forbidden"):
                    raise HomelabError(f"{what}: the token may not do this ({code}: {exc.message})",
                                       "create a Read & Write API token in the Hetzner Cloud Console") from exc
                retryable = code in RETRY_CODES or code in RETRY_HTTP
                if not retryable:
                    raise HomelabError(f"{what}: {exc.message} ({code})", _hint_for(code)) from exc
                unsure = code not in ("rate_limit_exceeded", 429, "locked", "conflict", "maintenance")
                asked = rate_limit_wait(self._headers(), self.clock.epoch()) if code in ("rate_limit_exceeded", 429) \
                    else 0.0
                reason = f"{exc.message} ({code})"
            except (requests.Timeout, requests.ConnectionError) as exc:
                why = not_there(exc)
                if why:  # not busy: absent. Waiting would only hide that for two minutes
                    raise HomelabError(f"{what}: cannot reach the Hetzner API at {self.endpoint}: {why}",
                                       "check the network, and HOMELAB_HCLOUD_ENDPOINT if it is set") from None
                unsure, asked = True, 0.0
                reason = f"no answer from {self.endpoint}: {type(exc).__name__}"
            if unsure and not idempotent:
                found = recover() if recover is not None else None
                if found is not None:
                    log.info("%s: the API did act after all (%s); using what it made", what, reason)
                    return found
            wait = attempts.next_wait(asked)
            if wait is None:
                extra = describe_reset(self._headers()) if "rate_limit" in reason else ""
                raise HomelabError(
                    f"{what}: gave up after {attempts.tries} tries in {attempts.waited:.0f} s: {reason}{extra}",
                    "the Hetzner API is busy or unreachable; run again later")
            log.info("%s: %s; retry %d in %.1f s", what, reason, attempts.tries, wait)
            self.clock.sleep(wait)

    def wait_action(self, what: str, action_id: int, timeout: float) -> None:
        """Poll an action until it succeeds; a clear error when it fails or outlives `timeout`."""
        start = self.clock.monotonic()
        interval = 0.2
        while True:
            action = self.call(f"{what}: read action {action_id}", lambda: self.client.actions.get_by_id(action_id))
            if action.status == "success":
                return
            if action.status == "error":
                err: Mapping[str, object] = action.error or {}  # a TypedDict; the API may leave it out
                raise HomelabError(f"{what}: Hetzner action {action.command} failed: "
                                   f"{err.get('message', 'no reason given')} ({err.get('code', 'error')})",
                                   "see the server in the Hetzner Cloud Console; apply again to retry")
            elapsed = self.clock.monotonic() - start
            if elapsed >= timeout:
                raise HomelabError(
                    f"{what}: Hetzner action {action.command} (id {action_id}) still running after {timeout:.0f} s",
                    "it may still finish: run `homelab plan` in a while to see where it stands "
                    "(compute.hetzner.action_timeout sets the limit)")
            self.clock.sleep(min(interval, max(0.0, timeout - elapsed)))
            interval = min(self.poll_cap, interval * 2)

    # ---------------------------------------------------------------- servers --
    def list_servers(self, selector: str) -> list[CloudServer]:
        found = self.call("list servers", lambda: self.client.servers.get_all(label_selector=selector))
        return sorted((_server(s) for s in found), key=lambda s: s.name)

    def find_server(self, name: str) -> CloudServer | None:
        s = self.call(f"look up server {name}", lambda: self.client.servers.get_by_name(name))
        return _server(s) if s is not None else None

    def get_server(self, server_id: int, name: str) -> CloudServer:
        return _server(self.call(f"read server {name}", lambda: self.client.servers.get_by_id(server_id)))

    def create_server(self, *, name: str, type: str, location: str, image: str, ssh_key: int | str,
                      labels: Mapping[str, str], user_data: Secret, timeout: float,
                      is_ours: Callable[[CloudServer], bool]) -> CloudServer:
        """Create a server and wait until it runs. Never makes a second server of that name."""
        what = f"create server {name}"

        def existing() -> CloudServer | None:
            found = self.find_server(name)
            if found is not None and not is_ours(found):
                raise HomelabError(f"{what}: a server named {name} exists in the project but is not managed by "
                                   "this config (its labels differ)",
                                   "rename the server in the config, or delete/relabel the other one by hand")
            return found

        before = existing()
        if before is not None:
            return self.wait_running(before, timeout)
        key = SSHKey(id=ssh_key) if isinstance(ssh_key, int) else SSHKey(name=ssh_key)

        def create() -> Any:
            try:
                return self.client.servers.create(
                    name=name, server_type=ServerType(name=type), image=Image(name=image),
                    location=Location(name=location), ssh_keys=[key], labels=dict(labels),
                    user_data=user_data.reveal(), start_after_create=True)
            except APIException as exc:
                if exc.code == "uniqueness_error":  # made by an earlier try after all
                    return existing()
                raise

        result = self.call(what, create, idempotent=False, recover=existing)
        if isinstance(result, CloudServer):
            return self.wait_running(result, timeout)
        self.wait_action(what, result.action.id, timeout)
        for nxt in result.next_actions or []:
            self.wait_action(what, nxt.id, timeout)
        return self.get_server(int(result.server.id), name)

    def wait_running(self, server: CloudServer, timeout: float) -> CloudServer:
        start = self.clock.monotonic()
        while server.status != "running" or not server.ipv4:
            if self.clock.monotonic() - start > timeout:
                raise HomelabError(f"server {server.name} is still {server.status} after {timeout:.0f} s",
                                   "look at it in the Hetzner Cloud Console; apply again later")
            self.clock.sleep(1.0)
            server = self.get_server(server.id, server.name)
        return server

    def delete_server(self, server: CloudServer, timeout: float) -> None:
        what = f"delete server {server.name}"
        action = self.call(what, lambda: self.client.servers.delete(HServer(id=server.id)), idempotent=False,
                           recover=lambda: None)
        self.wait_action(what, action.id, timeout)

    def change_type(self, server: CloudServer, new_type: str, timeout: float) -> None:
        """Resize: Hetzner needs the server off; the disk is kept so a later downsize works."""
        what = f"resize server {server.name} to {new_type}"
        ref = HServer(id=server.id)
        if server.status != "off":
            self.wait_action(what, self.call(what, lambda: self.client.servers.power_off(ref)).id, timeout)
        action = self.call(what, lambda: self.client.servers.change_type(ref, ServerType(name=new_type),
                                                                         upgrade_disk=False))
        self.wait_action(what, action.id, timeout)
        self.wait_action(what, self.call(what, lambda: self.client.servers.power_on(ref)).id, timeout)

    def set_protection(self, server: CloudServer, on: bool, timeout: float) -> None:
        what = f"{'protect' if on else 'unprotect'} server {server.name}"
        action = self.call(what, lambda: self.client.servers.change_protection(HServer(id=server.id), delete=on,
                                                                              rebuild=on))
        self.wait_action(what, action.id, timeout)

    def set_backups(self, server: CloudServer, on: bool, timeout: float) -> None:
        what = f"{'enable' if on else 'disable'} backups of {server.name}"
        ref = HServer(id=server.id)
        fn = self.client.servers.enable_backup if on else self.client.servers.disable_backup
        self.wait_action(what, self.call(what, lambda: fn(ref)).id, timeout)

    def set_labels(self, server: CloudServer, labels: Mapping[str, str]) -> None:
        self.call(f"label server {server.name}",
                  lambda: self.client.servers.update(HServer(id=server.id), labels=dict(labels)))

    # ---------------------------------------------------------------- volumes --
    def list_volumes(self, selector: str) -> list[CloudVolume]:
        found = self.call("list volumes", lambda: self.client.volumes.get_all(label_selector=selector))
        return sorted((_volume(v) for v in found), key=lambda v: v.name)

    def find_volume(self, name: str) -> CloudVolume | None:
        v = self.call(f"look up volume {name}", lambda: self.client.volumes.get_by_name(name))
        return _volume(v) if v is not None else None

    def create_volume(self, *, name: str, size_gb: int, server_id: int, labels: Mapping[str, str],
                      timeout: float) -> CloudVolume:
        """Create a volume attached to the server (in its location), unformatted: storage formats
        it. Never makes a second volume of that name (a timed-out create is looked up first)."""
        what = f"create volume {name}"
        # hcloud types `labels` as str; the API (and hcloud's own request body) take the mapping
        result: Any = self.call(what, lambda: self.client.volumes.create(
            size=size_gb, name=name, labels=dict(labels),  # type: ignore[arg-type]
            server=HServer(id=server_id), automount=False),
            idempotent=False, recover=lambda: self.find_volume(name))
        if isinstance(result, CloudVolume):
            return result
        self.wait_action(what, result.action.id, timeout)
        for nxt in result.next_actions or []:  # the attach
            self.wait_action(what, nxt.id, timeout)
        return _volume(self.call(f"read volume {name}", lambda: self.client.volumes.get_by_id(result.volume.id)))

    def _volume_action(self, what: str, fn: Callable[[], Any], timeout: float) -> None:
        self.wait_action(what, self.call(what, fn).id, timeout)

    def attach_volume(self, volume: CloudVolume, server_id: int, timeout: float) -> None:
        self._volume_action(f"attach volume {volume.name}", lambda: self.client.volumes.attach(
            HVolume(id=volume.id), HServer(id=server_id), automount=False), timeout)

    def detach_volume(self, volume: CloudVolume, timeout: float) -> None:
        self._volume_action(f"detach volume {volume.name}", lambda: self.client.volumes.detach(HVolume(id=volume.id)),
                            timeout)

    def resize_volume(self, volume: CloudVolume, size_gb: int, timeout: float) -> None:
        self._volume_action(f"resize volume {volume.name}", lambda: self.client.volumes.resize(
            HVolume(id=volume.id), size_gb), timeout)

    def protect_volume(self, volume: CloudVolume, on: bool, timeout: float) -> None:
        self._volume_action(f"{'protect' if on else 'unprotect'} volume {volume.name}",
                            lambda: self.client.volumes.change_protection(HVolume(id=volume.id), delete=on), timeout)

    def delete_volume(self, volume: CloudVolume) -> None:
        self.call(f"delete volume {volume.name}", lambda: self.client.volumes.delete(HVolume(id=volume.id)),
                  idempotent=False, recover=lambda: None)

    # --------------------------------------------------------------- ssh keys --
    def find_ssh_key(self, fingerprint: str) -> CloudKey | None:
        k = self.call("look up SSH key", lambda: self.client.ssh_keys.get_by_fingerprint(fingerprint))
        return _cloud_key(k) if k is not None else None

    def create_ssh_key(self, name: str, public_key: str, labels: Mapping[str, str]) -> CloudKey:
        what = f"upload SSH key {name}"

        def create() -> Any:
            return self.client.ssh_keys.create(name=name, public_key=public_key, labels=dict(labels))

        k = self.call(what, create, idempotent=False, recover=lambda: None)
        return _cloud_key(k)

    # ------------------------------------------------------------ token, prices --
    def check_token(self) -> TokenCheck:
        """Valid: a read works. Read-write: a write is *allowed*. Hetzner has no endpoint that
        says what a token may do, so we send a write that cannot succeed (an SSH key with an
        empty name and key): a read-only token gets `token_readonly`, a read-write token gets
        `invalid_input`; nothing is ever created."""
        try:
            self.call("check token", lambda: self.client.locations.get_list(per_page=1))
        except HomelabError as exc:
            return TokenCheck(False, False, exc.message)
        try:
            self.client.request("POST", "/ssh_keys", json={"name": "", "public_key": ""})
        except APIException as exc:
            if exc.code in ("token_readonly", "forbidden"):
                return TokenCheck(True, False, "read-only token")
            if exc.code == "invalid_input":
                return TokenCheck(True, True, "read-write")
            return TokenCheck(True, False, f"could not tell ({exc.code})")
        except (requests.Timeout, requests.ConnectionError) as exc:
            return TokenCheck(True, False, f"could not tell ({type(exc).__name__})")
        return TokenCheck(True, True, "read-write")

    def pricing(self) -> Mapping[str, Any]:
        """GET /pricing (hcloud has no client for it; `request` still goes through our retries)."""
        return self.call("read Hetzner prices", lambda: self.client.request("GET", "/pricing"))


def _hint_for(code: Any) -> str:
    return {
        "invalid_input": "check server type, location and image names in the config",
        "resource_unavailable": "this server type is sold out in that location; try another location",
        "resource_limit_exceeded": "the project's server limit is reached; ask Hetzner to raise it",
        "protected": "the server is delete-protected: set protection: false for it first",
        "not_found": "it was deleted outside homelab; run plan again",
        "uniqueness_error": "a resource with that name exists already",
    }.get(str(code), "see the Hetzner Cloud Console")


def endpoint_for(option: str | None, configured: str | None) -> str:
    """Which API to talk to: --/env override (tests, the lab stand-in), the config, else Hetzner."""
    from homelab.config.hetzner import DEFAULT_ENDPOINT

    return (option or configured or DEFAULT_ENDPOINT).rstrip("/")


def open_api(token: Secret, option: str | None, configured: str | None) -> HcloudApi:
    return HcloudApi(token, endpoint_for(option, configured))
