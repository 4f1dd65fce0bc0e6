"""Status changes reach every console of the tenant; a transfer carries an optional hand-off note
that only staff see (REST, the console socket and the pushed `conversation.updated`)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.accounts.services import ws_ticket_issue
from anmei.conversations import services
from anmei.conversations.models import Conversation
from tests.conftest import make_user
from tests.helpers import ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


async def _socket(path: str, user: User):
    communicator = ws(path, await sync_to_async(ws_ticket_issue)(user=user))
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=3))["type"] == "connection.ready"
    return communicator


async def _updates(communicator, count: int) -> list[dict]:
    """The next `count` conversation.updated events (other event types skipped)."""
    seen = []
    while len(seen) < count:
        event = await communicator.receive_json_from(timeout=3)
        if event.get("type") == "conversation.updated":
            seen.append(event)
    return seen


@pytest.fixture
def cora(tenant_a) -> User:
    return make_user(tenant_a, "cora", User.Role.CONSULTANT, nickname="Cora")


@pytest.fixture
def cody(tenant_a) -> User:
    return make_user(tenant_a, "cody", User.Role.CONSULTANT)


@pytest.fixture
def waiting(cathy) -> Conversation:
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="waiting")


async def test_a_colleagues_accept_and_end_reach_the_consultant_who_transferred(carol, cora, cody, ben, waiting):
    # given Carol's, Cody's (uninvolved) and another tenant's consoles
    sockets = {name: await _socket("/ws/console/", user) for name, user in [("carol", carol), ("cody", cody)]}
    outsider = await _socket("/ws/console/", ben)

    # when Carol claims and transfers to Cora, and Cora accepts and ends it
    await sync_to_async(services.conversation_claim)(user=carol, conversation_id=waiting.id)
    transfer = sync_to_async(services.conversation_transfer)
    await transfer(user=carol, conversation_id=waiting.id, to_consultant_id=cora.id)
    await sync_to_async(services.conversation_accept)(user=cora, conversation_id=waiting.id)
    await sync_to_async(services.conversation_end)(user=cora, conversation_id=waiting.id)

    # then Carol's console (and every other console of the tenant) follows each step to the end
    for communicator in sockets.values():
        updates = await _updates(communicator, 4)
        assert [(u["action"], u["status"], u["consultant_id"]) for u in updates] == [
            ("claim", "active", carol.id),
            ("transfer", "transferring", carol.id),
            ("accept", "active", cora.id),
            ("end", "ended", cora.id),
        ]
        assert {u["conversation_id"] for u in updates} == {waiting.id}
        await communicator.disconnect()
    # and nothing crosses to the other tenant
    assert await outsider.receive_nothing(timeout=0.3)
    await outsider.disconnect()
