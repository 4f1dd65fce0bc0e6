"""Tenant URLs, third pass: IPv4-embedding IPv6 forms, numeric hosts, `?`/`#` in base URLs, one
save-time check for every door (API serializers and admin forms); rules in anmei/common/outbound/."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from anmei.ai.models import AgentConfig
from anmei.bots.models import BotInstance
from anmei.common import outbound
from tests.fixtures_bots import make_bot
from tests.helpers import assert_error

# Every one of these reaches 127.0.0.1 (or cannot be judged) and must be refused.
LOOPBACK_SPELLINGS = [
    "[::127.0.0.1]",  # IPv4-compatible ::/96
    "[::7f00:1]",  # the same, in hex
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "[::ffff:0:7f00:1]",  # IPv4-translated (SIIT) ::ffff:0:0:0/96
    "[::ffff:0:127.0.0.1]",
    "[64:ff9b::7f00:1]",  # NAT64 well-known prefix
    "[64:ff9b::127.0.0.1]",
    "[64:ff9b:1::7f00:1]",  # NAT64 local-use 64:ff9b:1::/48
    "[64:ff9b:1:7f00:1::]",
    "[2002:7f00:1::1]",  # 6to4 around 127.0.0.1
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo
]
NUMERIC_HOSTS = ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "127.0.1", "017700000001"]


class _Recorder:
    def __init__(self):
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                seen.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder():
    server = _Recorder()
    yield server
    server.close()


@pytest.fixture
def no_allow_list(settings):
    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = []


# --- connect time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_ipv4_embedding_ipv6_forms_are_refused_at_connect_time(no_allow_list, host):
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.post(f"http://{host}:9/", json={}, timeout=2)
    assert caught.value.category == "blocked_destination"


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[64:ff9b::7f00:1]", "[::ffff:0:7f00:1]"])
def test_the_async_client_refuses_ipv4_embedding_forms_too(no_allow_list, host):
    async def call():
        async with outbound.async_client(timeout=2) as client:
            await client.post(f"http://{host}:9/", json={})

    with pytest.raises(Exception) as caught:
        asyncio.run(call())
    assert outbound.async_category(caught.value) == "blocked_destination"


@pytest.mark.parametrize("host", NUMERIC_HOSTS)
def test_numeric_host_forms_are_refused_before_any_byte_is_sent(no_allow_list, recorder, host):
    with pytest.raises(outbound.OutboundError) as caught:
        outbound.post(f"http://{host}:{recorder.port}/", json={}, timeout=2)
    assert caught.value.category in ("invalid_url", "blocked_destination")
    assert recorder.seen == []


@pytest.mark.parametrize(
    "address",
    ["::ffff:8.8.8.8", "64:ff9b::808:808", "::ffff:0:808:808", "2002:808:808::1", "2606:4700:4700::1111"],
)
def test_embedding_forms_of_public_addresses_stay_callable(no_allow_list, address):
    import ipaddress

    outbound.check_address("example.org", ipaddress.ip_address(address))  # no exception


def test_the_allow_list_judges_the_embedded_address(settings):
    import ipaddress

    settings.OUTBOUND_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1"]
    outbound.check_address("h", ipaddress.ip_address("::ffff:127.0.0.1"))
    with pytest.raises(outbound.BlockedDestination):
        outbound.check_address("h", ipaddress.ip_address("::127.0.0.1"))  # deprecated form: never


# --- save time --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [f"http://{host}:8080/" for host in LOOPBACK_SPELLINGS]
    + [f"http://{host}/" for host in NUMERIC_HOSTS]
    + [
        "http://127.0.0.1./",
        "http://app.localhost/",
        "https://llm.example/v1?",
        "https://llm.example/mcp?x=1",
        "https://bot.example/cb#frag",
        "https://bot.example/#",
    ],
)
def test_tenant_base_urls_are_refused_when_saved(no_allow_list, url):
    assert outbound.config_error(url) is not None


@pytest.mark.parametrize("url", ["https://llm.example/v1", "http://8.8.8.8:8080/cb", "https://[2606:4700::1111]/"])
def test_public_base_urls_are_accepted(no_allow_list, url):
    assert outbound.config_error(url) is None


def test_an_endpoint_url_may_carry_a_query_but_no_fragment(no_allow_list):
    assert outbound.config_error("https://push.example/hook?key=1", base=False) is None
    assert outbound.config_error("https://push.example/hook#x", base=False) is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8000/mcp?", "http://[::127.0.0.1]:8000/", "http://2130706433/", "https://llm.example/#x"],
)
def test_agent_config_put_refuses_a_private_or_query_base_url(no_allow_list, as_user, alice, base_url):
    # given alice's agent points at a public API
    client = as_user(alice)
    saved = client.put("/api/v1/admin/agent-config", {"base_url": "https://llm.example"}, format="json")
    assert saved.status_code == 200

    # when she tries a base URL that reaches an internal service
    response = client.put("/api/v1/admin/agent-config", {"base_url": base_url, "model": "m"}, format="json")

    # then it is a 400 on that field, and nothing changed
    error = assert_error(response, 400, "validation_error")
    assert list(error["details"]["fields"]) == ["base_url"]
    config = AgentConfig.objects.get(tenant=alice.tenant)
    assert (config.base_url, config.model) == ("https://llm.example", "")


@pytest.mark.django_db
@pytest.mark.parametrize("callback_url", ["http://[::127.0.0.1]:6196/", "http://0x7f000001/", "https://bot.example/?"])
def test_bot_api_refuses_embedded_numeric_and_query_callbacks(no_allow_list, as_user, alice, callback_url):
    body = {"name": "b", "platform": "wecom", "callback_url": callback_url}
    error = assert_error(as_user(alice).post("/api/v1/bots", body, format="json"), 400, "validation_error")
    assert list(error["details"]["fields"]) == ["callback_url"]
    assert not BotInstance.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("fast_hashing")
@pytest.mark.parametrize("callback_url", ["http://169.254.169.254/latest/", "http://[::ffff:0:7f00:1]:6196/"])
def test_bot_admin_form_refuses_a_private_callback(no_allow_list, alice, tenant_a, callback_url):
    client = Client()
    client.force_login(alice)
    response = client.post(
        "/admin/bots/botinstance/add/",
        {
            "tenant": tenant_a.id,
            "name": "evil",
            "platform": "wecom",
            "callback_url": callback_url,
            "status": "active",
            "config_version": 1,
            "away_message": "",
            "auto_reply_rules": "[]",
            "last_reported_status": "{}",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "not reachable from the platform" in response.content.decode()
    assert not BotInstance.objects.exists()


@pytest.mark.django_db
def test_a_stored_callback_with_a_query_still_calls_under_its_path(tenant_a, recorder):
    from anmei.bots.services.instances import signed_call

    # given a bot row saved before the rule, its callback ending in "?"
    bot, _, _ = make_bot(tenant_a, callback_url=recorder.url + "/bot")
    BotInstance.objects.filter(pk=bot.pk).update(callback_url=recorder.url + "/bot?")
    bot.refresh_from_db()

    # when we push to it, the path stays a path (not a query the bot's host routes elsewhere)
    signed_call(bot=bot, path="/astrbot-api/v1/health", payload={}).close()
    assert recorder.seen == ["/bot/astrbot-api/v1/health"]


def test_an_agent_base_url_with_a_query_keeps_the_api_path():
    from anmei.ai.providers import api_url

    assert (
        api_url("http://127.0.0.1:8001/mcp?", "/v1/chat/completions") == "http://127.0.0.1:8001/mcp/v1/chat/completions"
    )
    assert api_url("https://llm.example/v1/#", "/v1/chat/completions") == "https://llm.example/v1/chat/completions"
