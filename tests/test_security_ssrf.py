"""Tenant-configured URLs go through one guarded client (anmei.common.outbound).

http(s) only; loopback, private, link-local and other non-public addresses refused at connect time
unless allow-listed; no redirects; tenants see a category, never an upstream body or socket error.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from anmei.ai.providers import AgentError, AgentRequest
from anmei.common import outbound
from anmei.notifications.backends import NotificationBackendError, WebhookBackend


class _Server:
    """Answers every request with (status, headers, body) and records the paths it saw."""

    def __init__(self, status=200, headers=None, body=b"{}"):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                seen.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    made = []

    def make(**kwargs):
        made.append(_Server(**kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def no_allow_list(settings):
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://0.0.0.0:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
    ],
)
def test_non_public_addresses_are_refused_before_any_byte_is_sent(no_allow_list, server, url):
    target = server()
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.post(url.format(port=target.url.rsplit(":", 1)[1]), json={}, timeout=2)
    assert caught.value.category == "blocked_destination"
    assert target.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "ftp://example.com/",
        "http://user:pw@example.com/",
        "http:///nohost",
    ],
)
def test_only_plain_http_urls_are_accepted(url):
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.post(url, json={}, timeout=2)
    assert caught.value.category == "invalid_url"


def test_the_allow_list_takes_hosts_and_cidrs(settings, server):
    target = server()
    port = target.url.rsplit(":", 1)[1]
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.0/8"]
    assert outbound.post(f"http://localhost:{port}/a", json={}, timeout=2).status_code == 200
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    assert outbound.post(f"http://localhost:{port}/b", json={}, timeout=2).status_code == 200
    assert target.seen == ["/a", "/b"]


def test_redirects_are_not_followed(server):
    inner = server()
    redirecting = server(status=302, headers={"Location": inner.url + "/internal"})
    response = outbound.post(redirecting.url + "/start", json={}, timeout=2)
    assert response.status_code == 302
    assert inner.seen == []


def test_async_client_refuses_private_addresses_too(no_allow_list, server):
    target = server()

    async def call():
        async with outbound.async_client(timeout=2) as client:
            return await client.post(target.url + "/x", json={})

    import httpx2

    with pytest.raises(httpx2.ConnectError) as caught:
        asyncio.run(call())
    assert outbound.async_category(caught.value) == "blocked_destination"
    assert target.seen == []


def _agent_request(provider_url: str, **extra) -> AgentRequest:
    fields = dict(
        tenant_id=1,
        customer_id=1,
        conversation_id=None,
        purpose="reply",
        query="hi",
        base_url=provider_url,
        app_id="",
        api_key="k",
        model="m",
        timeout=2,
        welcome_template="",
        mcp=None,
    )
    fields.update(extra)
    return AgentRequest(**fields)


def test_dify_provider_refuses_metadata_addresses_and_hides_upstream_bodies(no_allow_list, settings, server):
    from anmei.ai.providers import dify

    with pytest.raises(AgentError) as blocked:
        dify.run(_agent_request("http://169.254.169.254"))
    assert str(blocked.value) == "dify unreachable: blocked_destination"

    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    leaky = server(status=500, body=b'{"secret": "redis on 10.0.0.5:6379 says NOAUTH"}')
    with pytest.raises(AgentError) as failed:
        dify.run(_agent_request(leaky.url))
    assert str(failed.value) == "dify answered 500"


def test_openai_provider_refuses_loopback(no_allow_list, server):
    from anmei.ai.providers import openai_compat

    target = server()
    with pytest.raises(AgentError) as blocked:
        openai_compat.run(_agent_request(target.url, mcp=object()))
    assert "blocked_destination" in str(blocked.value)
    assert target.seen == []


def test_push_gateway_to_a_private_address_is_refused(no_allow_list, server):
    target = server()
    with pytest.raises(NotificationBackendError) as blocked:
        WebhookBackend(url=target.url + "/push").send(_notification())
    assert str(blocked.value) == "push gateway unreachable: blocked_destination"
    assert target.seen == []


def _notification():
    from anmei.notifications.models import Notification

    return Notification(id=1, tenant_id=1, user_id=1, kind="k", title="t", body="b", payload={}, dedupe_key="d")


@pytest.mark.django_db
def test_bot_callback_to_loopback_is_refused_with_a_category(no_allow_list, tenant_a, server):
    from anmei.bots.services.instances import signed_post
    from tests.fixtures_bots import make_bot

    target = server()
    bot, _token, _secret = make_bot(tenant_a, callback_url=target.url)
    assert signed_post(bot=bot, path="/astrbot-api/v1/message/send", payload={"x": 1}) == "blocked_destination"
    assert target.seen == []


@pytest.mark.django_db
def test_astrbot_provider_reaches_the_bot_only_through_the_guard(no_allow_list, tenant_a, server):
    from anmei.ai.providers import astrbot
    from tests.fixtures_bots import make_bot

    # given a tenant whose bot's callback points at a loopback address
    target = server()
    bot, _token, _secret = make_bot(tenant_a, callback_url=target.url)
    # when the AstrBot provider asks that bot's LLM
    with pytest.raises(AgentError) as blocked:
        astrbot.run(_agent_request("", tenant_id=tenant_a.id, bot_id=bot.id))
    # then the call is refused before any byte is sent, with the category only
    assert str(blocked.value) == "bot unreachable: blocked_destination"
    assert target.seen == []


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://bot.clinic.example/cb", False),
        ("http://169.254.169.254/latest", True),
        ("http://localhost:6379/", True),
        ("http://[::1]/", True),
        ("file:///etc/passwd", True),
        ("http://user:pw@bot.example/", True),
    ],
)
def test_tenant_urls_are_checked_when_saved(no_allow_list, url, refused):
    assert (outbound.config_error(url) is not None) is refused


@pytest.mark.django_db
def test_bot_api_refuses_a_metadata_callback_url(no_allow_list, as_user, alice):
    from anmei.bots.models import BotInstance
    from tests.helpers import assert_error

    body = {"name": "b", "platform": "wecom", "callback_url": "http://169.254.169.254/latest/"}
    error = assert_error(as_user(alice).post("/api/v1/bots", body, format="json"), 400, "validation_error")
    assert list(error["details"]["fields"]) == ["callback_url"]
    assert not BotInstance.objects.exists()
