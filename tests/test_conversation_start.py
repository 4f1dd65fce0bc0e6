"""A returning customer starts a new consultation: POST /api/v1/conversations (API.md, third round)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.automation.services import automation_settings_update
from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.jobs.models import Job
from tests.conftest import client_for, make_user
from tests.fixtures_automation import await_for, receive_type, ws_connect
from tests.helpers import assert_error, poll

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ended(cathy):
    return Conversation.objects.create(
        tenant=cathy.tenant, customer=cathy, channel="web", status="ended", is_default=True
    )


def _welcomes(conversation_id: int) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id, sender_type="bot"))


def test_customer_after_an_ended_conversation_gets_a_new_waiting_one_with_a_welcome(cathy, ended, celery_worker):
    client = client_for(cathy)

    response = client.post("/api/v1/conversations", {}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["customer"], body["status"], body["channel"], body["consultant"]) == (cathy.id, "waiting", "web", None)
    assert body["id"] != ended.id
    new = Conversation.objects.get(pk=body["id"])
    assert not new.is_default
    assert list(ConversationEvent.objects.filter(conversation=new).values_list("action", "to_status")) == [
        ("created_by_customer", "waiting")
    ]
    welcome = poll(lambda: _welcomes(new.id))
    assert len(welcome) == 1
    assert welcome[0].external_id == f"welcome:conversation:{new.id}"
    assert welcome[0].payload["kind"] == "welcome" and welcome[0].content
    # the ended one is untouched and a second call answers with the open one
    again = client.post("/api/v1/conversations", {}, format="json")
    assert (again.status_code, again.json()["id"]) == (200, new.id)
    assert Conversation.objects.filter(customer=cathy).count() == 2
    # the customer may write in it at once
    body = {"type": "text", "content": "又来咨询"}
    sent = client.post(f"/api/v1/conversations/{new.id}/messages", body, format="json")
    assert sent.status_code == 201


def test_no_welcome_when_the_tenant_switched_returning_welcomes_off(cathy, ended, celery_worker):
    automation_settings_update(tenant_id=cathy.tenant_id, welcome_returning=False)

    response = client_for(cathy).post("/api/v1/conversations", {}, format="json")

    assert response.status_code == 201
    job = Job.objects.get(kind="automation.conversation_welcome", key=f"conversation:{response.json()['id']}")
    assert poll(lambda: Job.objects.filter(pk=job.pk, state="done").exists())
    assert _welcomes(response.json()["id"]) == []


def test_an_open_conversation_is_returned_and_nothing_is_created(cathy):
    open_one = Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="active")

    response = client_for(cathy).post("/api/v1/conversations", {}, format="json")

    assert (response.status_code, response.json()["id"]) == (200, open_one.id)
    assert Conversation.objects.filter(customer=cathy).count() == 1
    assert Job.objects.filter(kind="automation.conversation_welcome").count() == 0


def test_staff_cannot_start_one_and_bad_bodies_are_refused(carol, alice, cathy, ended, anon):
    assert_error(client_for(carol).post("/api/v1/conversations", {}, format="json"), 403)
    assert_error(client_for(alice).post("/api/v1/conversations", {}, format="json"), 403)
    assert_error(client_for(cathy).post("/api/v1/conversations", [1], format="json"), 400, "validation_error")
    assert_error(anon.post("/api/v1/conversations", {}, format="json"), 401)
    assert Conversation.objects.count() == 1


def test_tenants_are_isolated(cathy, ended, tenant_b):
    other = make_user(tenant_b, "cathy-b")
    response = client_for(other).post("/api/v1/conversations", {}, format="json")
    assert response.status_code == 201
    assert Conversation.objects.get(pk=response.json()["id"]).tenant_id == tenant_b.id
    assert Conversation.objects.filter(customer=cathy).count() == 1


@pytest.mark.usefixtures("async_db_closed")
async def test_the_new_conversation_reaches_the_console_waiting_list(cathy, carol, ended):
    console = await ws_connect("/ws/console/", carol)
    customer_ws = await ws_connect("/ws/customer/", cathy)

    response = await sync_to_async(lambda: client_for(cathy).post("/api/v1/conversations", {}, format="json"))()

    assert response.status_code == 201
    pushed = await receive_type(console, "conversation.updated")
    started = response.json()["id"]
    assert (pushed["conversation_id"], pushed["action"], pushed["status"]) == (started, "created", "waiting")
    own = await receive_type(customer_ws, "conversation.updated")
    assert own["conversation_id"] == response.json()["id"]
    assert await await_for(lambda: Conversation.objects.filter(customer=cathy, status="waiting").count() == 1)
    await console.disconnect()
    await customer_ws.disconnect()


def _timeline(client, conversation_id: int) -> list[tuple[str, str]]:
    response = client.get(f"/api/v1/conversations/{conversation_id}/messages")
    assert response.status_code == 200
    return [
        (m["sender_type"], m.get("payload", {}).get("kind", "") or m["content"]) for m in response.json()["results"]
    ]


def test_a_question_sent_before_the_welcome_is_never_followed_by_it(cathy, ended, request):
    """The customer types at once: the welcome job runs only after the question is stored."""
    from anmei.jobs.services import job_publish

    client = client_for(cathy)
    started = client.post("/api/v1/conversations", {}, format="json").json()["id"]
    sent = client.post(
        f"/api/v1/conversations/{started}/messages", {"type": "text", "content": "还能预约吗"}, format="json"
    )
    assert sent.status_code == 201
    job = Job.objects.get(kind="automation.conversation_welcome", key=f"conversation:{started}")
    assert job.state != "done"

    request.getfixturevalue("celery_worker")  # the worker starts now, after the question (its start purges the queue)
    job_publish(job=job)
    assert poll(lambda: Job.objects.filter(pk=job.pk, state="done").exists())

    assert _welcomes(started) == []
    assert _timeline(client, started) == [("customer", "还能预约吗")]


def test_a_welcome_ready_first_opens_the_timeline_above_the_question(cathy, ended, celery_worker):
    client = client_for(cathy)
    started = client.post("/api/v1/conversations", {}, format="json").json()["id"]
    assert poll(lambda: _welcomes(started))

    client.post(f"/api/v1/conversations/{started}/messages", {"type": "text", "content": "还能预约吗"}, format="json")

    assert _timeline(client, started) == [("bot", "welcome"), ("customer", "还能预约吗")]
