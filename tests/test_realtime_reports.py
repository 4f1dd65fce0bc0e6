"""A realtime push reports whether the channel layer took it; the caller decides what a loss means."""

from __future__ import annotations

import logging

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from anmei.common import realtime
from tests.fixtures_mcp import free_port


@pytest.fixture
def dead_channel_layer():
    """The channel layer pointed at a port nothing listens on (Redis down, as the layer sees it)."""
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 1}]},
        }
    }
    channel_layers.backends.clear()
    with override_settings(CHANNEL_LAYERS=layers):
        yield
    channel_layers.backends.clear()


def test_a_push_the_layer_took_reports_true():
    assert realtime.broadcast_to_console(1, {"type": "probe"}) is True


def test_a_lost_push_is_logged_and_reported_not_raised(dead_channel_layer, caplog):
    # when an event is pushed while the channel layer's Redis is unreachable
    with caplog.at_level(logging.ERROR, logger="anmei.realtime"):
        sent = realtime.broadcast_to_user(1, 2, {"type": "message.new"})
    # then the caller is told, and the loss is one log line naming the group and the event
    assert sent is False
    assert [(r.message, r.group, r.event_type) for r in caplog.records] == [
        ("realtime send failed", "t1.u2", "message.new")
    ]


def test_a_caller_that_retries_asks_for_the_error(dead_channel_layer):
    with pytest.raises(Exception):  # noqa: B017 - whatever the layer raised, unchanged
        realtime.broadcast_to_admins(1, {"type": "admin.alert"}, raise_on_error=True)
