"""Fixtures for the session-intelligence tests (a pytest plugin loaded by conftest)."""

from __future__ import annotations

import json

import pytest


def configure_agent(tenant, **fields):
    """Set the tenant's agent through the service (secrets in clear here, stored encrypted)."""
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update

    return agent_config_update(config=agent_config_get_or_create(tenant_id=tenant.id), **fields)


def use_openai(tenant, fake, **fields):
    return configure_agent(
        tenant, provider="openai", base_url=fake.url + "/v1", model="fake-gpt", api_key="sk-fake-123", **fields
    )


def summary_json(**overrides) -> str:
    body = {
        "main_issues": "客户想了解玻尿酸的维持时间和价格",
        "solution": "顾问说明了维持6到12个月及价格区间",
        "evaluation": "回复及时、专业",
        "follow_up": "三天后回访是否预约面诊",
    }
    body.update(overrides)
    return json.dumps(body, ensure_ascii=False)


def suggestions_json(*items: tuple[str, str]) -> str:
    return json.dumps({"suggestions": [{"kind": k, "text": t} for k, t in items]}, ensure_ascii=False)


@pytest.fixture
def fake_astrbot_llm():
    from tests.fakes.fake_astrbot_llm import FakeAstrBotLLM

    server = FakeAstrBotLLM().start()
    yield server
    server.stop()


class Listener:
    """Joins users' WebSocket groups on the real channel layer and reads the events pushed to them.

    It keeps a layer instance and an event loop of its own: channels_redis binds receive state to a loop.
    """

    def __init__(self, *users) -> None:
        import asyncio

        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import channel_layers

        from anmei.common.realtime import user_group

        self.loop = asyncio.new_event_loop()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)  # its own: receive state is per loop
        self.channels = {}
        for user in users:
            channel = self.loop.run_until_complete(self.layer.new_channel())
            self.loop.run_until_complete(self.layer.group_add(user_group(user.tenant_id, user.id), channel))
            self.channels[user.id] = channel

    def next(self, user, event_type: str, timeout: float = 15.0) -> dict | None:
        """The next `event_type` event pushed to `user` within `timeout`, or None."""
        import asyncio
        import time

        channel = self.channels[user.id]

        async def receive():
            deadline = time.monotonic() + timeout
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    message = await asyncio.wait_for(self.layer.receive(channel), remaining)
                except TimeoutError:
                    return None
                event = message.get("event") or {}
                if event.get("type") == event_type:
                    return event
            return None

        return self.loop.run_until_complete(receive())

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.close_pools())
        self.loop.close()


@pytest.fixture
def listen():
    """`listen(*users)` → a Listener on those users' groups, closed (pools, loop) after the test."""
    made: list[Listener] = []

    def make(*users) -> Listener:
        listener = Listener(*users)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()
