"""Fixtures for the bots, blacklist, lifecycle and search tests (a pytest plugin loaded by conftest)."""

from __future__ import annotations

import socket

import pytest
from rest_framework.test import APIClient

PUSH_PATH = "/astrbot-api/v1/config/update"
SEND_PATH = "/astrbot-api/v1/message/send"
FAST_RETRIES = [0.3, 0.3, 0.3]


@pytest.fixture
def fake_bot():
    """A running fake bot server on 127.0.0.1 (port chosen by the OS)."""
    from tests.fakes.fake_bot import FakeBotServer

    server = FakeBotServer().start()
    yield server
    server.stop()


@pytest.fixture
def unused_url() -> str:
    """A URL nothing listens on (bound to port 0 and closed), for unreachable-bot tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_bot(tenant, *, callback_url: str, name: str = "astrbot-1", platform: str = "wecom", fake=None):
    """Create a bot through the service; returns (bot, token, secret) and registers the secret with `fake`."""
    from anmei.bots.services import bot_create

    bot, token, secret = bot_create(tenant_id=tenant.id, name=name, platform=platform, callback_url=callback_url)
    if fake is not None:
        fake.register(bot.id, secret)
    return bot, token, secret


def bot_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def bot_fast_retries(tenant, countdowns=None):
    """Short retry countdowns for the tenant (run-time settings: no restart, no patching)."""
    from anmei.bots.services import gateway_settings_get_or_create

    gateway = gateway_settings_get_or_create(tenant_id=tenant.id)
    gateway.retry_countdowns = list(countdowns or FAST_RETRIES)
    gateway.save()
    return gateway


def inbound(message_id: str = "m-1", *, user_id: str = "wx-u1", content: str = "你好", **extra) -> dict:
    return {
        "platform": "wecom",
        "user_id": user_id,
        "nickname": "小美",
        "type": "text",
        "content": content,
        "message_id": message_id,
        **extra,
    }


@pytest.fixture
def fast_hashing(settings):
    """Cheap password hashing for persona set-up (PBKDF2 costs ~0.3 s per user on this machine).

    The hasher list is an env knob (PASSWORD_HASHERS); nothing in these tests checks passwords.
    """
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
