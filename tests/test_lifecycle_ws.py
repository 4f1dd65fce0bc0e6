"""The console WebSocket: lifecycle commands mirror REST, and changes/messages reach the right people."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.accounts.services import ws_ticket_issue
from anmei.conversations.models import Conversation
from tests.conftest import make_user
from tests.fixtures_bots import bot_client, inbound, make_bot
from tests.helpers import ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


async def _console(user):
    communicator = ws("/ws/console/", await sync_to_async(ws_ticket_issue)(user=user))
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=3))["type"] == "connection.ready"
    return communicator


async def _until(communicator, kind: str, timeout: float = 3) -> dict:
    """Next event of `kind` (other event types in between are skipped)."""
    while True:
        event = await communicator.receive_json_from(timeout=timeout)
        if event.get("type") == kind:
            return event


@pytest.fixture
def cora(tenant_a):
    return make_user(tenant_a, "cora", User.Role.CONSULTANT)


@pytest.fixture
def waiting(cathy):
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="waiting")


async def test_claim_over_the_console_socket_wins_once_and_everyone_sees_it(carol, cora, waiting):
    carol_ws, cora_ws = await _console(carol), await _console(cora)
    await carol_ws.send_json_to({"type": "claim_customer", "conversation_id": waiting.id})
    ok = await _until(carol_ws, "command.ok")
    assert (ok["command"], ok["conversation"]["status"], ok["conversation"]["consultant"]) == (
        "claim_customer",
        "active",
        carol.id,
    )
    update = await _until(cora_ws, "conversation.updated")
    assert (update["conversation_id"], update["action"], update["status"], update["consultant_id"]) == (
        waiting.id,
        "claim",
        "active",
        carol.id,
    )

    await cora_ws.send_json_to({"type": "conversation.claim", "conversation_id": waiting.id})
    error = await _until(cora_ws, "error")
    assert (error["code"], error["status"], error["details"]["status"]) == ("illegal_transition", 409, "active")
    await carol_ws.disconnect()
    await cora_ws.disconnect()


async def test_transfer_and_accept_over_the_socket_notify_both_consultants(carol, cora, waiting):
    carol_ws, cora_ws = await _console(carol), await _console(cora)
    await carol_ws.send_json_to({"type": "conversation.claim", "conversation_id": waiting.id})
    await _until(carol_ws, "command.ok")
    await carol_ws.send_json_to(
        {"type": "conversation.transfer", "conversation_id": waiting.id, "to_consultant": cora.id}
    )
    await _until(carol_ws, "command.ok")
    invite = await _until(cora_ws, "conversation.updated")
    while invite["action"] != "transfer":
        invite = await _until(cora_ws, "conversation.updated")
    assert (invite["status"], invite["transfer_to_id"]) == ("transferring", cora.id)

    await cora_ws.send_json_to({"type": "conversation.accept", "conversation_id": waiting.id})
    assert (await _until(cora_ws, "command.ok"))["conversation"]["consultant"] == cora.id
    accepted = await _until(carol_ws, "conversation.updated")
    while accepted["action"] != "accept":
        accepted = await _until(carol_ws, "conversation.updated")
    assert (accepted["status"], accepted["consultant_id"]) == ("active", cora.id)

    await cora_ws.send_json_to({"type": "message.send", "conversation_id": waiting.id, "content": "我来接待您"})
    sent = await _until(cora_ws, "command.ok")
    assert (sent["message"]["sender_type"], sent["message"]["content"]) == ("consultant", "我来接待您")
    await carol_ws.disconnect()
    await cora_ws.disconnect()


@pytest.mark.parametrize(
    "command, code",
    [
        ({"type": "conversation.claim"}, "validation_error"),
        ({"type": "conversation.claim", "conversation_id": "abc"}, "validation_error"),
        ({"type": "conversation.claim", "conversation_id": 99999999}, "not_found"),
        ({"type": "conversation.transfer", "conversation_id": 1}, "validation_error"),
    ],
)
async def test_bad_commands_get_an_error_event(carol, command, code):
    carol_ws = await _console(carol)
    await carol_ws.send_json_to(command)
    assert (await _until(carol_ws, "error"))["code"] == code
    await carol_ws.disconnect()


async def test_a_bad_message_over_the_socket_is_refused_like_the_rest_call(carol, waiting):
    from rest_framework.test import APIClient

    # given the same bad message (a system message, blank text) for the socket and for REST
    rest = APIClient()
    rest.force_authenticate(carol)
    carol_ws = await _console(carol)

    # when carol sends it both ways
    await carol_ws.send_json_to(
        {"type": "message.send", "conversation_id": waiting.id, "message_type": "system", "content": " "}
    )
    error = await _until(carol_ws, "error")
    await carol_ws.disconnect()
    response = await sync_to_async(rest.post)(
        f"/api/v1/conversations/{waiting.id}/messages", {"type": "system", "content": " "}, format="json"
    )

    # then both refuse it with the same code, message and field errors, and nothing is stored
    body = response.json()["error"]
    assert response.status_code == 400
    assert (error["code"], error["status"], error["message"]) == ("validation_error", 400, body["message"])
    assert error["details"] == body["details"]
    assert sorted(error["details"]["fields"]) == ["content", "type"]
    assert await sync_to_async(waiting.messages.count)() == 0


async def test_other_tenants_consultant_cannot_claim_over_the_socket(ben, waiting):
    ben_ws = await _console(ben)
    await ben_ws.send_json_to({"type": "conversation.claim", "conversation_id": waiting.id})
    assert (await _until(ben_ws, "error"))["code"] == "not_found"
    assert (await sync_to_async(Conversation.objects.get)(pk=waiting.id)).status == "waiting"
    await ben_ws.disconnect()


async def test_inbound_message_goes_to_the_console_then_only_to_the_claiming_consultant(tenant_a, carol, cora):
    _, token, _ = await sync_to_async(make_bot)(tenant_a, callback_url="http://127.0.0.1:9")
    carol_ws, cora_ws = await _console(carol), await _console(cora)
    client = bot_client(token)
    first = (
        await sync_to_async(client.post)("/api/v1/bot/messages", inbound("m-1", content="第一条"), format="json")
    ).json()
    for communicator in (carol_ws, cora_ws):
        event = await _until(communicator, "message.new")
        assert (event["conversation_id"], event["message"]["content"]) == (first["conversation_id"], "第一条")

    await carol_ws.send_json_to({"type": "conversation.claim", "conversation_id": first["conversation_id"]})
    await _until(carol_ws, "command.ok")
    await _until(cora_ws, "conversation.updated")
    await sync_to_async(client.post)("/api/v1/bot/messages", inbound("m-2", content="第二条"), format="json")
    event = await _until(carol_ws, "message.new")
    assert event["message"]["content"] == "第二条"
    assert await cora_ws.receive_nothing(timeout=0.5)
    await carol_ws.disconnect()
    await cora_ws.disconnect()
