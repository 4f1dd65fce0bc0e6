"""Conversation lifecycle over REST: every legal and illegal transition, permissions, concurrent claims."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.conversations.services import conversation_end_inactive
from tests.conftest import client_for, make_user
from tests.helpers import assert_error, race

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def cora(tenant_a):
    return make_user(tenant_a, "cora", User.Role.CONSULTANT, nickname="Cora")


@pytest.fixture
def waiting(cathy):
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, channel="web", status="waiting")


def _post(client, conversation, action, body=None):
    return client.post(f"/api/v1/conversations/{conversation.id}/{action}", body or {}, format="json")


def _state(conversation):
    conversation.refresh_from_db()
    return conversation.status, conversation.consultant_id, conversation.transfer_to_id


def _events(conversation):
    return list(
        ConversationEvent.objects.filter(conversation=conversation).values_list("action", "from_status", "to_status")
    )


@pytest.mark.django_db
class TestLegalTransitions:
    def test_claim_transfer_accept_end(self, waiting, carol, cora, as_user):
        response = _post(as_user(carol), waiting, "claim")
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["consultant"]) == ("active", carol.id)
        response = _post(as_user(carol), waiting, "transfer", {"to_consultant": cora.id})
        assert (response.json()["status"], response.json()["transfer_to"]) == ("transferring", cora.id)
        assert _post(as_user(cora), waiting, "accept").status_code == 200
        assert _state(waiting) == ("active", cora.id, None)
        assert _post(as_user(cora), waiting, "end").status_code == 200
        assert _state(waiting) == ("ended", cora.id, None)
        assert waiting.ended_at is not None
        assert _events(waiting) == [
            ("claim", "waiting", "active"),
            ("transfer", "active", "transferring"),
            ("accept", "transferring", "active"),
            ("end", "active", "ended"),
        ]
        transfer = ConversationEvent.objects.get(conversation=waiting, action="transfer")
        assert (transfer.actor_id, transfer.details) == (
            carol.id,
            {"from_consultant": carol.id, "to_consultant": cora.id},
        )

    def test_decline_returns_it_to_the_current_consultant(self, waiting, carol, cora, as_user):
        _post(as_user(carol), waiting, "claim")
        _post(as_user(carol), waiting, "transfer", {"to_consultant": cora.id})
        assert _post(as_user(cora), waiting, "decline").status_code == 200
        assert _state(waiting) == ("active", carol.id, None)
        assert _events(waiting)[-1] == ("decline", "transferring", "active")

    def test_inviter_can_withdraw_a_transfer(self, waiting, carol, cora, as_user):
        _post(as_user(carol), waiting, "claim")
        _post(as_user(carol), waiting, "transfer", {"to_consultant": cora.id})
        assert _post(as_user(carol), waiting, "decline").status_code == 200
        assert _state(waiting) == ("active", carol.id, None)

    def test_ending_while_transferring_and_ending_a_waiting_one(self, waiting, carol, cora, cathy, as_user):
        _post(as_user(carol), waiting, "claim")
        _post(as_user(carol), waiting, "transfer", {"to_consultant": cora.id})
        assert _post(as_user(carol), waiting, "end").status_code == 200
        assert _state(waiting) == ("ended", carol.id, None)
        other = Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="waiting")
        assert _post(as_user(cora), other, "end").status_code == 200
        assert _state(other)[0] == "ended"

    def test_admin_may_transfer_and_end_anyones_conversation(self, waiting, alice, carol, cora, as_user):
        _post(as_user(carol), waiting, "claim")
        assert _post(as_user(alice), waiting, "transfer", {"to_consultant": cora.id}).status_code == 200
        assert _post(as_user(alice), waiting, "decline").status_code == 200
        assert _post(as_user(alice), waiting, "end").status_code == 200


@pytest.mark.django_db
class TestIllegalTransitions:
    @pytest.mark.parametrize(
        "setup, action, expected_status",
        [
            ([], "accept", "waiting"),
            ([], "decline", "waiting"),
            ([], "transfer", "waiting"),
            (["claim"], "claim", "active"),
            (["claim"], "accept", "active"),
            (["claim"], "decline", "active"),
            (["claim", "transfer"], "claim", "transferring"),
            (["claim", "transfer"], "transfer", "transferring"),
            (["claim", "end"], "claim", "ended"),
            (["claim", "end"], "transfer", "ended"),
            (["claim", "end"], "accept", "ended"),
            (["claim", "end"], "decline", "ended"),
            (["claim", "end"], "end", "ended"),
        ],
    )
    def test_illegal_transition_is_409_with_the_current_status(
        self, waiting, carol, cora, as_user, setup, action, expected_status
    ):
        client = as_user(carol)
        for step in setup:
            assert _post(client, waiting, step, {"to_consultant": cora.id}).status_code == 200
        before = (_state(waiting), len(_events(waiting)))
        error = assert_error(_post(client, waiting, action, {"to_consultant": cora.id}), 409, "illegal_transition")
        assert error["details"]["status"] == expected_status
        assert error["details"]["action"] == action
        assert (_state(waiting), len(_events(waiting))) == before

    def test_only_the_assigned_consultant_transfers_or_ends(self, waiting, carol, cora, as_user):
        _post(as_user(carol), waiting, "claim")
        for action in ("transfer", "end"):
            error = assert_error(_post(as_user(cora), waiting, action, {"to_consultant": cora.id}), 403, "not_assigned")
            assert error["details"]["status"] == "active"
        assert _state(waiting) == ("active", carol.id, None)

    def test_only_the_invitee_accepts(self, waiting, carol, cora, tenant_a, as_user):
        third = make_user(tenant_a, "cindy", User.Role.CONSULTANT)
        _post(as_user(carol), waiting, "claim")
        _post(as_user(carol), waiting, "transfer", {"to_consultant": cora.id})
        assert_error(_post(as_user(third), waiting, "accept"), 403, "not_assigned")
        assert_error(_post(as_user(carol), waiting, "accept"), 403, "not_assigned")
        assert_error(_post(as_user(third), waiting, "decline"), 403, "not_assigned")
        assert _state(waiting) == ("transferring", carol.id, cora.id)

    @pytest.mark.parametrize("target", ["self", "customer", "other_tenant", "missing", "bad"])
    def test_transfer_to_someone_invalid_is_400(self, waiting, carol, cathy, ben, as_user, target):
        _post(as_user(carol), waiting, "claim")
        to = {"self": carol.id, "customer": cathy.id, "other_tenant": ben.id, "missing": 999999, "bad": "x"}[target]
        assert_error(_post(as_user(carol), waiting, "transfer", {"to_consultant": to}), 400)
        assert _state(waiting) == ("active", carol.id, None)

    def test_customers_cannot_drive_the_lifecycle(self, waiting, cathy, as_user):
        assert_error(_post(as_user(cathy), waiting, "claim"), 403)
        assert _state(waiting) == ("waiting", None, None)

    def test_other_tenant_gets_404_and_changes_nothing(self, waiting, ben, bob, as_user):
        for user in (ben, bob):
            for action in ("claim", "end", "accept", "decline"):
                assert_error(_post(as_user(user), waiting, action), 404, "not_found")
        assert _state(waiting) == ("waiting", None, None)
        assert _events(waiting) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_exactly_one_winner(tenant_a, cathy):
    consultants = [make_user(tenant_a, f"consultant{i}", User.Role.CONSULTANT) for i in range(8)]
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="waiting")
    clients = [client_for(user) for user in consultants]

    def claim(i: int) -> tuple[int, int]:
        response = clients[i].post(f"/api/v1/conversations/{conversation.id}/claim")
        return consultants[i].id, response.status_code

    results = race(len(clients), claim)

    winners = [user_id for user_id, status in results if status == 200]
    assert len(results) == 8
    assert len(winners) == 1
    assert sorted(status for _, status in results) == [200] + [409] * 7
    conversation.refresh_from_db()
    assert (conversation.status, conversation.consultant_id) == ("active", winners[0])
    assert ConversationEvent.objects.filter(conversation=conversation, action="claim").count() == 1


@pytest.mark.django_db
class TestMessages:
    def test_consultant_replies_after_claiming(self, waiting, carol, as_user):
        assert_error(
            _post(as_user(carol), waiting, "messages", {"type": "text", "content": "hi"}),
            409,
            "conversation_not_claimed",
        )
        _post(as_user(carol), waiting, "claim")
        response = _post(as_user(carol), waiting, "messages", {"type": "text", "content": "您好"})
        assert response.status_code == 201
        assert (response.json()["sender_type"], response.json()["sender_id"]) == ("consultant", carol.id)
        waiting.refresh_from_db()
        assert waiting.last_message_at is not None

    def test_customer_writes_in_their_own_conversation(self, waiting, cathy, as_user):
        response = _post(as_user(cathy), waiting, "messages", {"type": "text", "content": "在吗"})
        assert response.status_code == 201
        assert response.json()["sender_type"] == "customer"

    def test_not_the_assigned_consultant_cannot_reply(self, waiting, carol, cora, as_user):
        _post(as_user(carol), waiting, "claim")
        assert_error(_post(as_user(cora), waiting, "messages", {"type": "text", "content": "x"}), 403, "not_assigned")

    def test_ended_conversation_takes_no_messages(self, waiting, carol, cathy, as_user):
        _post(as_user(carol), waiting, "claim")
        _post(as_user(carol), waiting, "end")
        assert_error(
            _post(as_user(cathy), waiting, "messages", {"type": "text", "content": "x"}), 409, "conversation_ended"
        )

    @pytest.mark.parametrize(
        "body", [{}, {"type": "text"}, {"type": "system", "content": "x"}, {"type": "text", "content": ""}]
    )
    def test_bad_message_is_400_and_nothing_stored(self, waiting, cathy, as_user, body):
        assert_error(_post(as_user(cathy), waiting, "messages", body), 400)
        assert Message.objects.count() == 0

    def test_other_tenant_cannot_post(self, waiting, bill, ben, as_user):
        for user in (bill, ben):
            assert_error(_post(as_user(user), waiting, "messages", {"type": "text", "content": "x"}), 404)
        assert Message.objects.count() == 0


@pytest.mark.django_db
def test_inactive_conversations_are_ended_by_the_sweep(tenant_a, cathy, carol, as_user):
    from anmei.conversations.services import conversation_settings_get_or_create

    # given a 10-minute timeout, one conversation idle for 11 minutes and one active 5 minutes ago
    conversation_settings = conversation_settings_get_or_create(tenant_id=tenant_a.id)
    conversation_settings.inactivity_timeout_minutes = 10
    conversation_settings.save()
    idle = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="waiting")
    busy = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="waiting")
    _post(as_user(carol), busy, "claim")
    Conversation.objects.filter(pk=idle.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    Conversation.objects.filter(pk=busy.pk).update(last_message_at=timezone.now() - timedelta(minutes=5))

    # when the sweep runs
    ended = conversation_end_inactive()

    # then only the idle one is ended, by a timeout event; six minutes later the other follows, once
    assert ended == 1
    assert _state(idle)[0] == "ended" and _state(busy)[0] == "active"
    event = ConversationEvent.objects.get(conversation=idle, to_status="ended")
    assert (event.action, event.actor_id, event.details) == ("timeout", None, {"reason": "inactivity"})
    assert conversation_end_inactive(now=timezone.now() + timedelta(minutes=6)) == 1
    assert conversation_end_inactive(now=timezone.now() + timedelta(minutes=6)) == 0


def test_periodic_tasks_are_scheduled():
    from celery_config import app

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {"workers.blacklist.expire_entries", "workers.conversations.end_inactive"} <= tasks
