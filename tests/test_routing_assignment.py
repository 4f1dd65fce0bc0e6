"""Automatic assignment (docs/routing.md): capacity, online-only, modes, hours, races, real workers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from anmei.common.presence import presence_leave, presence_touch
from anmei.conversations.models import Conversation, ConversationEvent, RoutingSettings
from anmei.conversations.services import conversation_create, conversation_end
from anmei.conversations.services.assignment import conversations_assign, conversations_assign_sweep
from anmei.jobs.models import Job
from tests.conftest import make_user
from tests.helpers import poll, race

S = Conversation.Status


def online(user) -> None:
    presence_touch(tenant_id=user.tenant_id, user_id=user.id, role=user.role, channel_name=f"test.{user.id}")


def routing(tenant, **fields) -> RoutingSettings:
    settings, _ = RoutingSettings.objects.update_or_create(tenant=tenant, defaults=fields)
    return settings


def waiting(tenant, count: int, prefix: str = "c") -> list[Conversation]:
    return [conversation_create(customer=make_user(tenant, f"{prefix}{i}"), channel="web")[0] for i in range(count)]


def held(tenant) -> dict[int, int]:
    counts: dict[int, int] = {}
    for consultant_id in Conversation.objects.filter(tenant=tenant, status=S.ACTIVE).values_list(
        "consultant_id", flat=True
    ):
        counts[consultant_id] = counts.get(consultant_id, 0) + 1
    return counts


@pytest.mark.django_db
def test_manual_mode_assigns_nothing_and_schedules_no_job(tenant_a, carol):
    online(carol)
    waiting(tenant_a, 2)
    assert conversations_assign(tenant_id=tenant_a.id) == []
    assert Conversation.objects.filter(status=S.WAITING).count() == 2
    assert not Job.objects.filter(kind="conversations.assign").exists()


@pytest.mark.django_db
def test_least_busy_fills_online_consultants_up_to_capacity_oldest_first(tenant_a, carol, bob):
    dora = make_user(tenant_a, "dora", "consultant")
    eve = make_user(tenant_a, "eve", "consultant")  # not online: gets nothing
    ben = make_user(bob.tenant, "ben9", "consultant")  # the other tenant's, online: gets nothing
    for user in (carol, dora, ben):
        online(user)
    routing(tenant_a, mode="least_busy", capacity_per_consultant=2)
    conversations = waiting(tenant_a, 5)
    assigned = conversations_assign(tenant_id=tenant_a.id)
    assert assigned == [c.id for c in conversations[:4]]
    assert held(tenant_a) == {carol.id: 2, dora.id: 2}
    assert Conversation.objects.get(pk=conversations[4].pk).status == S.WAITING
    # least busy alternates: carol, dora, carol, dora (ties by id)
    order = [Conversation.objects.get(pk=c.id).consultant_id for c in conversations[:4]]
    assert order == [carol.id, dora.id, carol.id, dora.id]
    assert eve.id not in held(tenant_a)
    event = ConversationEvent.objects.get(conversation=conversations[0], action="assigned")
    assert (event.from_status, event.to_status, event.actor_id) == ("waiting", "active", None)
    # ending one frees capacity: the next round gives the last waiting one to that consultant
    conversation_end(user=carol, conversation_id=conversations[0].id)
    assert conversations_assign(tenant_id=tenant_a.id) == [conversations[4].id]
    assert Conversation.objects.get(pk=conversations[4].pk).consultant_id == carol.id


@pytest.mark.django_db
def test_round_robin_gives_the_next_to_whoever_was_assigned_longest_ago(tenant_a, carol):
    dora = make_user(tenant_a, "dora", "consultant")
    online(carol)
    online(dora)
    routing(tenant_a, mode="round_robin", capacity_per_consultant=10)
    first = waiting(tenant_a, 3, "a")
    conversations_assign(tenant_id=tenant_a.id)
    assert [Conversation.objects.get(pk=c.id).consultant_id for c in first] == [carol.id, dora.id, carol.id]
    # carol holds more, but dora was assigned longest ago: round robin ignores load
    more = waiting(tenant_a, 1, "b")
    conversations_assign(tenant_id=tenant_a.id)
    assert Conversation.objects.get(pk=more[0].id).consultant_id == dora.id


@pytest.mark.django_db
def test_away_consultant_keeps_held_work_and_gets_no_more(tenant_a, carol):
    routing(tenant_a, mode="least_busy", capacity_per_consultant=5)
    online(carol)
    first = waiting(tenant_a, 1, "a")
    assert conversations_assign(tenant_id=tenant_a.id) == [first[0].id]
    presence_leave(tenant_id=tenant_a.id, user_id=carol.id, role=carol.role, channel_name=f"test.{carol.id}")
    later = waiting(tenant_a, 1, "b")
    assert conversations_assign(tenant_id=tenant_a.id) == []
    assert Conversation.objects.get(pk=first[0].id).consultant_id == carol.id
    assert Conversation.objects.get(pk=later[0].id).status == S.WAITING


@pytest.mark.django_db
def test_outside_business_hours_assignment_pauses(tenant_a, carol):
    hours = {"timezone": "Asia/Shanghai", "weekly": {"mon": [["09:00", "18:00"]]}, "holidays": []}
    routing(tenant_a, mode="least_busy", capacity_per_consultant=5, business_hours=hours)
    online(carol)
    conversations = waiting(tenant_a, 1)
    # Monday 2027-01-11 08:59 and 18:00 in Shanghai: closed; 09:00: open
    assert conversations_assign(tenant_id=tenant_a.id, now=datetime(2027, 1, 11, 0, 59, tzinfo=UTC)) == []
    assert conversations_assign(tenant_id=tenant_a.id, now=datetime(2027, 1, 11, 10, 0, tzinfo=UTC)) == []
    assert conversations_assign(tenant_id=tenant_a.id, now=datetime(2027, 1, 11, 1, 0, tzinfo=UTC)) == [
        conversations[0].id
    ]


@pytest.mark.django_db(transaction=True)
def test_parallel_rounds_never_put_a_consultant_past_capacity(tenant_a, carol):
    consultants = [carol, *(make_user(tenant_a, f"k{i}", "consultant") for i in range(2))]
    for user in consultants:
        online(user)
    routing(tenant_a, mode="least_busy", capacity_per_consultant=2)
    waiting(tenant_a, 12)
    results = race(6, lambda _: conversations_assign(tenant_id=tenant_a.id))
    assigned = [cid for result in results for cid in result]
    assert len(assigned) == len(set(assigned)) == 6
    assert held(tenant_a) == {user.id: 2 for user in consultants}
    assert Conversation.objects.filter(status=S.WAITING).count() == 6


@pytest.mark.django_db(transaction=True)
def test_parallel_registrations_with_real_workers_fill_capacity_exactly(celery_worker, tenant_a, tenant_b, carol):
    consultants = [carol, *(make_user(tenant_a, f"k{i}", "consultant") for i in range(2))]
    outsider = make_user(tenant_b, "ben9", "consultant")
    for user in (*consultants, outsider):
        online(user)
    routing(tenant_a, mode="round_robin", capacity_per_consultant=2)
    routing(tenant_b, mode="least_busy", capacity_per_consultant=2)
    customers = [make_user(tenant_a, f"c{i}") for i in range(10)]
    race(10, lambda i: conversation_create(customer=customers[i], channel="web"))
    jobs = Job.objects.filter(kind="conversations.assign", tenant=tenant_a)
    assert poll(lambda: jobs.count() == 10 and not jobs.exclude(state=Job.State.DONE).exists(), timeout=60)
    assert held(tenant_a) == {user.id: 2 for user in consultants}
    assert Conversation.objects.filter(tenant=tenant_a, status=S.WAITING).count() == 4
    assert held(tenant_b) == {}
    # a consultant ending one frees a place: its job gives the oldest waiting one to them
    oldest = Conversation.objects.filter(tenant=tenant_a, status=S.WAITING).order_by("created_at", "id").first()
    mine = Conversation.objects.filter(consultant=carol, status=S.ACTIVE).first()
    conversation_end(user=carol, conversation_id=mine.id)
    assert poll(lambda: Conversation.objects.get(pk=oldest.pk).status == S.ACTIVE, timeout=30)
    assert Conversation.objects.get(pk=oldest.pk).consultant_id == carol.id
    assert held(tenant_a) == {user.id: 2 for user in consultants}


@pytest.mark.django_db
def test_the_sweep_assigns_what_waits_in_automatic_tenants_only(tenant_a, tenant_b, carol):
    ben = make_user(tenant_b, "ben9", "consultant")
    online(carol)
    online(ben)
    waiting(tenant_b, 1, "b")  # tenant b is manual (no row)
    conversation = waiting(tenant_a, 1, "a")[0]
    routing(tenant_a, mode="least_busy", capacity_per_consultant=1)
    assert conversations_assign_sweep() == {tenant_a.id: [conversation.id]}
    assert Conversation.objects.filter(tenant=tenant_b, status=S.WAITING).count() == 1
