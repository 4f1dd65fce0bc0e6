"""Open WebSockets do not outlive the access that opened them (API.md "Hardening promises").

Each socket is bound to the login token whose ticket opened it; logout, password change,
deactivation, role change and tenant suspension close it with 4401, and every command re-checks
the user, role, tenant and token as they are now.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from anmei.accounts import services as account_services
from anmei.accounts.models import AuthToken, User
from anmei.common import realtime
from anmei.conversations.models import Conversation
from anmei.tenants.services import tenant_suspend
from tests.conftest import PASSWORD
from tests.helpers import ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

CLOSED = {"type": "websocket.close", "code": 4401}


def _login(user: User) -> APIClient:
    """A client holding a fresh login token of `user`, got through the REST login."""
    client = APIClient()
    body = {"tenant": user.tenant.slug, "username": user.username, "password": PASSWORD}
    response = client.post("/api/v1/auth/login", body, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    return client


async def _open(path: str, client: APIClient):
    response = await sync_to_async(client.post)("/api/v1/auth/ws-ticket")
    assert response.status_code == 200, response.content
    communicator = ws(path, response.json()["ticket"])
    assert (await communicator.connect())[0]
    ready = await communicator.receive_json_from(timeout=3)
    assert ready["type"] == "connection.ready"
    return communicator


async def _next_output(communicator) -> dict:
    """The next frame or close, skipping JSON events the server pushed meanwhile."""
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return output
        if json.loads(output["text"]).get("type") in ("pong", "error", "command.ok"):
            return output


async def _still_open(communicator) -> None:
    await communicator.send_json_to({"type": "ping"})
    output = await _next_output(communicator)
    assert output["type"] == "websocket.send", output


@pytest.fixture
def waiting(cathy):
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="waiting")


async def test_password_change_closes_the_open_console_socket(carol, ben):
    carol_client = await sync_to_async(_login)(carol)
    carol_ws = await _open("/ws/console/", carol_client)
    ben_ws = await _open("/ws/console/", await sync_to_async(_login)(ben))

    response = await sync_to_async(carol_client.post)(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": "another-horse-battery"}, format="json"
    )

    assert response.status_code == 204
    assert await carol_ws.receive_output(timeout=3) == CLOSED
    await _still_open(ben_ws)  # another tenant's consultant is not touched
    await ben_ws.disconnect()


async def test_logout_closes_only_the_sockets_opened_with_that_token(carol):
    first, second = await sync_to_async(_login)(carol), await sync_to_async(_login)(carol)
    first_ws, second_ws = await _open("/ws/console/", first), await _open("/ws/console/", second)

    assert (await sync_to_async(first.post)("/api/v1/auth/logout")).status_code == 204

    assert await first_ws.receive_output(timeout=3) == CLOSED
    await _still_open(second_ws)
    await second_ws.disconnect()


async def test_customer_socket_closes_on_password_change(cathy):
    client = await sync_to_async(_login)(cathy)
    cathy_ws = await _open("/ws/customer/", client)

    response = await sync_to_async(client.post)(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": "another-horse-battery"}, format="json"
    )

    assert response.status_code == 204
    assert await cathy_ws.receive_output(timeout=3) == CLOSED


async def test_a_deactivated_consultants_claim_is_refused_and_the_socket_closed(carol, waiting):
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))
    # deactivated behind the services' back: the command's own re-check must catch it
    await User.objects.filter(pk=carol.pk).aupdate(is_active=False)

    await carol_ws.send_json_to({"type": "conversation.claim", "conversation_id": waiting.id})

    assert await _next_output(carol_ws) == CLOSED
    conversation = await Conversation.objects.aget(pk=waiting.pk)
    assert (conversation.status, conversation.consultant_id) == ("waiting", None)


async def test_a_command_after_the_token_is_deleted_closes_the_socket(carol, waiting):
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))
    await AuthToken.objects.filter(user=carol).adelete()  # expired or revoked, no close message sent

    await carol_ws.send_json_to({"type": "claim_customer", "conversation_id": waiting.id})

    assert await _next_output(carol_ws) == CLOSED
    assert (await Conversation.objects.aget(pk=waiting.pk)).status == "waiting"


async def test_admin_deactivation_closes_the_socket(carol, alice):
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))
    alice_ws = await _open("/ws/console/", await sync_to_async(_login)(alice))

    deactivated = await sync_to_async(account_services.users_deactivate)(users=User.objects.filter(pk=carol.pk))

    assert deactivated == 1
    assert await carol_ws.receive_output(timeout=3) == CLOSED
    assert not await AuthToken.objects.filter(user=carol).aexists()
    await _still_open(alice_ws)
    await alice_ws.disconnect()


def _admin_change(user: User, operator: User, **changes) -> int:
    """Save `user` through the Django admin change form with `changes`; return the status."""
    client = Client()
    client.force_login(operator)
    url = f"/admin/accounts/user/{user.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else getattr(value, "pk", value)
    data.update(changes)
    return client.post(url, data).status_code


async def test_a_role_change_in_admin_closes_the_socket(carol, olga):
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))

    assert await sync_to_async(_admin_change)(carol, olga, role="customer") == 302

    assert (await User.objects.aget(pk=carol.pk)).role == "customer"
    assert await carol_ws.receive_output(timeout=3) == CLOSED


async def test_an_admin_edit_that_leaves_access_alone_keeps_the_socket(carol, olga):
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))

    assert await sync_to_async(_admin_change)(carol, olga, nickname="Carol B") == 302

    await _still_open(carol_ws)
    await carol_ws.disconnect()


async def test_tenant_suspension_closes_every_socket_of_that_tenant_only(carol, cathy, alice, ben):
    sockets = [
        await _open("/ws/console/", await sync_to_async(_login)(carol)),
        await _open("/ws/console/", await sync_to_async(_login)(alice)),
        await _open("/ws/customer/", await sync_to_async(_login)(cathy)),
    ]
    ben_ws = await _open("/ws/console/", await sync_to_async(_login)(ben))

    await sync_to_async(tenant_suspend)(tenant=carol.tenant)

    for communicator in sockets:
        assert await communicator.receive_output(timeout=3) == CLOSED
    await _still_open(ben_ws)
    await ben_ws.disconnect()


async def test_a_listening_socket_stops_receiving_once_its_token_is_gone(carol, settings):
    # every event re-checks (WS_REAUTH_SECONDS=0), so a lost close message cannot keep the feed open
    settings.WS_REAUTH_SECONDS = 0
    carol_ws = await _open("/ws/console/", await sync_to_async(_login)(carol))
    await sync_to_async(realtime.broadcast_to_console)(carol.tenant_id, {"type": "probe", "n": 1})
    assert await carol_ws.receive_json_from(timeout=3) == {"type": "probe", "n": 1}

    await AuthToken.objects.filter(user=carol).adelete()  # behind the services' back: no close sent
    await sync_to_async(realtime.broadcast_to_console)(carol.tenant_id, {"type": "probe", "n": 2})

    assert await carol_ws.receive_output(timeout=3) == CLOSED
