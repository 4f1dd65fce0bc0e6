"""Status changes reach every console of the tenant; a transfer carries an optional hand-off note
that only staff see (REST, the console socket and the pushed `conversation.updated`)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.accounts.services import ws_ticket_issue
from anmei.conversations import services
from anmei.conversations.models import Conversation, ConversationEvent
from tests.conftest import client_for, make_user
from tests.helpers import assert_error, ws

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


def test_transfer_note_is_stored_and_returned_with_the_transfer(carol, cora, waiting):
    services.conversation_claim(user=carol, conversation_id=waiting.id)

    response = client_for(carol).post(
        f"/api/v1/conversations/{waiting.id}/transfer",
        {"to_consultant": cora.id, "note": "  客户想做热玛吉，预算一万左右，已发价格表  "},
        format="json",
    )

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["transfer_to"]) == ("transferring", cora.id)
    event = ConversationEvent.objects.get(conversation=waiting, action="transfer")
    assert event.details == {
        "from_consultant": carol.id,
        "to_consultant": cora.id,
        "note": "客户想做热玛吉，预算一万左右，已发价格表",
    }


def test_transfer_without_a_note_keeps_the_original_interface(carol, cora, waiting):
    services.conversation_claim(user=carol, conversation_id=waiting.id)

    response = client_for(carol).post(
        f"/api/v1/conversations/{waiting.id}/transfer", {"to_consultant": cora.id}, format="json"
    )

    assert response.status_code == 200
    event = ConversationEvent.objects.get(conversation=waiting, action="transfer")
    assert event.details == {"from_consultant": carol.id, "to_consultant": cora.id}


@pytest.mark.parametrize("note", ["x" * 501, ["a"], {"text": "a"}])
def test_a_bad_note_is_a_400_and_nothing_changes(carol, cora, waiting, note):
    services.conversation_claim(user=carol, conversation_id=waiting.id)

    response = client_for(carol).post(
        f"/api/v1/conversations/{waiting.id}/transfer", {"to_consultant": cora.id, "note": note}, format="json"
    )

    error = assert_error(response, 400, "validation_error")
    assert "note" in str(error["details"])
    waiting.refresh_from_db()
    assert (waiting.status, waiting.transfer_to_id) == ("active", None)
    assert not ConversationEvent.objects.filter(conversation=waiting, action="transfer").exists()


async def test_the_receiver_gets_the_note_and_the_customer_never_does(carol, cora, cathy, waiting):
    # given Cora's console and Cathy's chat socket, and Carol holding the conversation
    await sync_to_async(services.conversation_claim)(user=carol, conversation_id=waiting.id)
    cora_ws = await _socket("/ws/console/", cora)
    carol_ws = await _socket("/ws/console/", carol)
    customer_ws = await _socket("/ws/customer/", cathy)

    # when Carol transfers over the console socket with a note
    await carol_ws.send_json_to(
        {"type": "conversation.transfer", "conversation_id": waiting.id, "to_consultant": cora.id, "note": "已报价"}
    )

    # then Cora's event carries the note and who handed it over; the customer's copy has no note
    [invite] = await _updates(cora_ws, 1)
    assert (invite["action"], invite["transfer_to_id"], invite["actor_id"], invite["note"]) == (
        "transfer",
        cora.id,
        carol.id,
        "已报价",
    )
    [seen_by_customer] = await _updates(customer_ws, 1)
    assert seen_by_customer["action"] == "transfer"
    assert "note" not in seen_by_customer
    # and the timeline's stored event keeps it for the receiver (console events API)
    url = f"/api/v1/console/conversations/{waiting.id}/events"
    events = await sync_to_async(lambda: client_for(cora).get(url).json())()
    assert [e["details"].get("note") for e in events["results"] if e["action"] == "transfer"] == ["已报价"]
    for communicator in (cora_ws, carol_ws, customer_ws):
        await communicator.disconnect()


def test_the_customer_cannot_read_the_note_through_the_events_api(carol, cora, cathy, waiting):
    services.conversation_claim(user=carol, conversation_id=waiting.id)
    services.conversation_transfer(user=carol, conversation_id=waiting.id, to_consultant_id=cora.id, note="内部备注")

    response = client_for(cathy).get(f"/api/v1/console/conversations/{waiting.id}/events")

    assert response.status_code == 200
    [transfer] = [e for e in response.json()["results"] if e["action"] == "transfer"]
    assert transfer["details"] == {"from_consultant": carol.id, "to_consultant": cora.id}
    # while the receiver reads it
    staff_view = client_for(cora).get(f"/api/v1/console/conversations/{waiting.id}/events").json()
    assert [e["details"].get("note") for e in staff_view["results"] if e["action"] == "transfer"] == ["内部备注"]
