"""Transport hardening, third pass: a WebSocket Origin setting of its own, a JSON CSRF failure,
a CSP whose img-src/media-src are 'self' blob: data:."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from anmei.common.wsorigin import allowed_hosts_origin_validator


async def _accepting_app(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def _connects(origin: bytes | None) -> bool:
    app = allowed_hosts_origin_validator(_accepting_app)
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(app, "/ws/console/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


async def test_websocket_origins_come_from_their_own_setting_not_allowed_hosts(settings):
    # given a deployment that serves HTTP for an internal name but lets only the console site open sockets
    settings.ALLOWED_HOSTS = ["internal.clinic.example", "console.clinic.example"]
    settings.WS_ALLOWED_ORIGINS = ["console.clinic.example"]
    assert await _connects(b"https://console.clinic.example") is True
    assert await _connects(b"https://internal.clinic.example") is False
    assert await _connects(None) is True  # non-browser clients send no Origin


async def test_no_websocket_origin_is_allowed_when_none_is_configured(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.WS_ALLOWED_ORIGINS = []
    assert await _connects(b"https://evil.example") is False


@pytest.mark.django_db
def test_a_csrf_failure_answers_the_error_json():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "csrf_failed"


@pytest.mark.django_db
def test_the_csp_limits_images_and_media_to_self_blob_and_data():
    policy = Client().get("/api/v1/health")["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["img-src"] == ["'self'", "blob:", "data:"]
    assert directives["media-src"] == ["'self'", "blob:", "data:"]


@pytest.fixture
def behind_a_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = []
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]


@pytest.mark.django_db
def test_x_forwarded_proto_from_a_peer_that_is_not_our_proxy_is_ignored(behind_a_proxy):
    # a client past the proxy claims HTTPS: it is still plain HTTP, so it is redirected
    response = Client(REMOTE_ADDR="203.0.113.9").get("/api/v1/health", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


@pytest.mark.django_db
def test_x_forwarded_proto_from_our_proxy_is_believed(behind_a_proxy):
    response = Client(REMOTE_ADDR="10.1.2.3").get("/api/v1/health", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code != 301


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=abc", "items=0-3", "bytes=--1"])
def test_an_unparsable_or_multi_range_header_gets_the_whole_body_with_200(alice, header):
    from anmei.media.links import media_url
    from anmei.media.services import media_store

    stored = media_store(tenant_id=alice.tenant_id, kind="voice", upload=b"OggS" + bytes(range(60)))
    url = media_url(tenant_id=alice.tenant_id, key=stored.key, mime=stored.mime)
    response = Client().get(url, HTTP_RANGE=header)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert response.getvalue() == b"OggS" + bytes(range(60))
