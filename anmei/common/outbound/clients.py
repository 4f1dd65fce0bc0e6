"""Guarded `httpx2` clients (sync and async): connects go to the addresses the policy checked."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from anmei.common.outbound.policy import OutboundError, _checked


def _addresses(httpcore2, host: str, infos):
    """The checked addresses of a lookup (None: it failed), or httpcore2's ConnectError(category)."""
    if infos is None:
        raise httpcore2.ConnectError("dns_error")
    try:
        return _checked(host, infos)
    except OutboundError as exc:
        raise httpcore2.ConnectError(exc.category) from None


def _guarded_backend():
    import httpcore2

    class GuardedBackend(httpcore2.AsyncNetworkBackend):
        def __init__(self):
            self._inner = httpcore2.AnyIOBackend()

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror:
                infos = None
            addresses = _addresses(httpcore2, host, infos)
            last: Exception | None = None
            for _family, ip in addresses:
                try:
                    return await self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
                except httpcore2.ConnectError as exc:
                    last = exc
            raise httpcore2.ConnectError(type(last).__name__)

        async def connect_unix_socket(self, *args, **kwargs):
            raise httpcore2.ConnectError("blocked_destination")

        async def sleep(self, seconds):
            await self._inner.sleep(seconds)

    return GuardedBackend()


def _guarded_sync_backend():
    import httpcore2

    class GuardedSyncBackend(httpcore2.NetworkBackend):
        def __init__(self):
            self._inner = httpcore2.SyncBackend()

        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror:
                infos = None
            addresses = _addresses(httpcore2, host, infos)
            last: Exception | None = None
            for _family, ip in addresses:
                try:
                    return self._inner.connect_tcp(str(ip), port, timeout, local_address, socket_options)
                except httpcore2.ConnectError as exc:
                    last = exc
            raise httpcore2.ConnectError(type(last).__name__)

        def connect_unix_socket(self, *args, **kwargs):
            raise httpcore2.ConnectError("blocked_destination")

        def sleep(self, seconds):
            self._inner.sleep(seconds)

    return GuardedSyncBackend()


def sync_client(**kwargs: Any):
    """An httpx2.Client for tenant URLs: guarded connects, no redirects, no proxy env vars."""
    import httpx2

    verify = kwargs.pop("verify", True)
    transport = httpx2.HTTPTransport(verify=verify, trust_env=False)
    transport._pool._network_backend = _guarded_sync_backend()  # httpcore2 has no public hook for it
    return httpx2.Client(transport=transport, follow_redirects=False, trust_env=False, **kwargs)


def async_client(**kwargs: Any):
    """An httpx2.AsyncClient for tenant URLs: guarded connects, no redirects, no proxy env vars."""
    import httpx2

    verify = kwargs.pop("verify", True)
    transport = httpx2.AsyncHTTPTransport(verify=verify, trust_env=False)
    transport._pool._network_backend = _guarded_backend()  # httpcore2 has no public hook for it
    return httpx2.AsyncClient(transport=transport, follow_redirects=False, trust_env=False, **kwargs)


def async_category(exc: BaseException) -> str:
    """Tenant-safe category for an httpx2 failure raised through async_client."""
    text = str(exc)
    if text in ("blocked_destination", "dns_error"):
        return text
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return "timeout"
    return "connection_failed"
