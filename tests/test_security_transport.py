"""WebSocket Origin check, MCP sidecar Host/Origin validation from settings."""

from __future__ import annotations

import pytest
import requests
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from anmei.accounts.services import ws_ticket_issue

pytestmark = pytest.mark.django_db(transaction=True)


async def _handshake(carol, origin: bytes | None):
    from anmei.asgi import application

    ticket = await sync_to_async(ws_ticket_issue)(user=carol)
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(application, f"/ws/console/?ticket={ticket}", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


async def test_websocket_from_another_site_is_refused(carol):
    assert await _handshake(carol, b"https://evil.example") is False
    assert await _handshake(carol, b"http://testserver") is True
    assert await _handshake(carol, None) is True  # non-browser clients send no Origin


def test_mcp_sidecar_validates_host_and_origin(mcp_sidecar):
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    rebound = requests.post(mcp_sidecar.url, json=body, headers={**headers, "Host": "evil.example"}, timeout=5)
    cross_site = requests.post(
        mcp_sidecar.url, json=body, headers={**headers, "Origin": "https://evil.example"}, timeout=5
    )
    assert (rebound.status_code, cross_site.status_code) == (421, 403)


def test_mcp_sidecar_host_list_comes_from_settings(mcp_sidecar_factory):
    sidecar = mcp_sidecar_factory(MCP_ALLOWED_HOSTS="mcp.internal:*")
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    assert requests.post(sidecar.url, json=body, headers=headers, timeout=5).status_code == 421  # 127.0.0.1 not listed
    allowed = requests.post(sidecar.url, json=body, headers={**headers, "Host": "mcp.internal:80"}, timeout=5)
    assert allowed.status_code != 421
