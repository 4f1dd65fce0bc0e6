"""The guarded `requests` session: every connect goes to an address the policy checked."""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from anmei.common.outbound.policy import OutboundError, check_url, resolve

logger = logging.getLogger("anmei.outbound")


class _GuardedConnectionMixin:
    def _new_conn(self):
        last: OSError | None = None
        for family, ip in resolve(self._dns_host, self.port):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout if isinstance(self.timeout, int | float) else None)
                for option in self.socket_options or []:
                    sock.setsockopt(*option)
                sock.connect((str(ip), self.port))
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        from urllib3.exceptions import NewConnectionError

        raise NewConnectionError(self, f"Failed to establish a new connection: {type(last).__name__}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def send(self, request, **kwargs):
        check_url(request.url)
        return super().send(request, **kwargs)


class GuardedSession(requests.Session):
    """A Session that never follows redirects, ignores proxy env vars and checks every connect."""

    def __init__(self):
        super().__init__()
        self.trust_env = False
        self.mount("http://", _GuardedAdapter())
        self.mount("https://", _GuardedAdapter())

    def request(self, method, url, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(method, url, **kwargs)


_local = threading.local()


def session() -> GuardedSession:
    """One keep-alive guarded session per thread."""
    found = getattr(_local, "session", None)
    if found is None:
        found = _local.session = GuardedSession()
    return found


def categorize(exc: BaseException) -> str:
    """A tenant-safe category for a failed call (never the exception text)."""
    if isinstance(exc, OutboundError):
        return exc.category
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls_error"
    if isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema
    ):
        return "invalid_url"
    return "connection_failed"


def post(url: str, **kwargs: Any) -> requests.Response:
    """POST through the guarded per-thread session; raises OutboundError(category) on any failure."""
    try:
        check_url(url)
        return session().post(url, **kwargs)
    except OutboundError:
        raise
    except requests.RequestException as exc:
        category = categorize(exc)
        logger.info("outbound call failed", extra={"category": category, "error_type": type(exc).__name__})
        raise OutboundError(category, type(exc).__name__) from None


# --- httpx2 (async) -------------------------------------------------------------------------------
