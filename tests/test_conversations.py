from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.services import ws_ticket_issue
from anmei.common import realtime
from anmei.conversations.models import Conversation, Message
from tests.conftest import make_user
from tests.helpers import assert_error, ws


@pytest.fixture
def conv_a(cathy, carol):
    conversation = Conversation.objects.create(tenant=cathy.tenant, customer=cathy, channel="web", bot_name="Anmei")
    Message.objects.create(
        tenant=cathy.tenant, conversation=conversation, sender_type="bot", type="text", content="欢迎来到安美智享！"
    )
    Message.objects.create(
        tenant=cathy.tenant, conversation=conversation, sender_type="customer", sender=cathy, content="hello"
    )
    return conversation


@pytest.fixture
def conv_b(bill):
    return Conversation.objects.create(tenant=bill.tenant, customer=bill, channel="wecom")


@pytest.mark.django_db
class TestListing:
    def test_customer_sees_only_their_own_conversations(self, conv_a, tenant_a, as_user):
        other = make_user(tenant_a, "other")
        Conversation.objects.create(tenant=tenant_a, customer=other)
        response = as_user(conv_a.customer).get("/api/v1/conversations")
        assert response.status_code == 200
        assert [c["id"] for c in response.json()["results"]] == [conv_a.id]
        assert_error(as_user(other).get(f"/api/v1/conversations/{conv_a.id}/messages"), 404, "not_found")

    def test_consultant_sees_the_tenants_conversations_filtered_by_customer(self, conv_a, carol, tenant_a, as_user):
        other = make_user(tenant_a, "other")
        other_conv = Conversation.objects.create(tenant=tenant_a, customer=other)
        client = as_user(carol)
        ids = {c["id"] for c in client.get("/api/v1/conversations").json()["results"]}
        assert ids == {conv_a.id, other_conv.id}
        filtered = client.get(f"/api/v1/conversations?customer={conv_a.customer_id}").json()
        assert filtered["count"] == 1
        assert filtered["results"][0]["id"] == conv_a.id
        assert filtered["results"][0]["customer_nickname"] == "Cathy"

    def test_messages_are_listed_oldest_first_with_the_welcome_first(self, conv_a, cathy, as_user):
        response = as_user(cathy).get(f"/api/v1/conversations/{conv_a.id}/messages")
        assert response.status_code == 200
        results = response.json()["results"]
        assert [(m["sender_type"], m["content"]) for m in results] == [
            ("bot", "欢迎来到安美智享！"),
            ("customer", "hello"),
        ]

    def test_pagination_and_status_filter(self, tenant_a, carol, as_user):
        customers = [make_user(tenant_a, f"c{i}") for i in range(5)]
        for i, customer in enumerate(customers):
            Conversation.objects.create(tenant=tenant_a, customer=customer, status="ended" if i % 2 else "waiting")
        client = as_user(carol)
        page = client.get("/api/v1/conversations?page_size=2&status=waiting").json()
        assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
        assert {c["status"] for c in page["results"]} == {"waiting"}

    @pytest.mark.parametrize(
        "query",
        ["status=bogus", "customer=abc", "page_size=0", "page_size=1000", "created_after=yesterday", "customer=-1"],
    )
    def test_bad_filters_are_a_400(self, carol, as_user, query):
        assert_error(as_user(carol).get(f"/api/v1/conversations?{query}"), 400, "validation_error")

    @pytest.mark.parametrize(
        "url, status, code",
        [
            ("/api/v1/conversations?customer=21483900443058103123968", 400, "validation_error"),
            ("/api/v1/conversations?page=99999999999999999999", 400, "validation_error"),
            ("/api/v1/conversations/99999999999999999999999/messages", 404, "not_found"),
        ],
    )
    def test_ids_beyond_bigint_are_a_4xx_not_a_database_overflow(self, carol, as_user, url, status, code):
        # given an id or page number past PostgreSQL's BIGINT
        # when carol asks for it
        response = as_user(carol).get(url)
        # then the answer is a clear 4xx error, not a database overflow (500)
        assert_error(response, status, code)

    def test_page_past_the_end_is_a_404_in_the_error_shape(self, conv_a, carol, as_user):
        assert_error(as_user(carol).get("/api/v1/conversations?page=99"), 404, "not_found")

    def test_operator_is_not_a_tenant_member(self, olga, as_user):
        assert_error(as_user(olga).get("/api/v1/conversations"), 403, "permission_denied")


@pytest.mark.django_db
class TestTenantIsolation:
    def test_other_tenants_users_see_nothing_of_tenant_a(self, conv_a, conv_b, bob, ben, bill, as_user):
        for outsider in (bob, ben, bill):
            client = as_user(outsider)
            ids = [c["id"] for c in client.get("/api/v1/conversations").json()["results"]]
            assert conv_a.id not in ids
            assert_error(client.get(f"/api/v1/conversations/{conv_a.id}/messages"), 404, "not_found")
            filtered = client.get(f"/api/v1/conversations?customer={conv_a.customer_id}").json()
            assert filtered["count"] == 0

    def test_tenant_a_staff_cannot_read_tenant_b(self, conv_b, carol, alice, as_user):
        for insider in (carol, alice):
            assert_error(as_user(insider).get(f"/api/v1/conversations/{conv_b.id}/messages"), 404, "not_found")


@pytest.mark.django_db(transaction=True)
async def test_websocket_groups_do_not_cross_tenants(carol, ben):
    ticket_a = await sync_to_async(ws_ticket_issue)(user=carol)
    ticket_b = await sync_to_async(ws_ticket_issue)(user=ben)
    comm_a, comm_b = ws("/ws/console/", ticket_a), ws("/ws/console/", ticket_b)
    for comm in (comm_a, comm_b):
        assert (await comm.connect())[0]
        assert (await comm.receive_json_from(timeout=3))["type"] == "connection.ready"

    await realtime.agroup_send(realtime.console_group(carol.tenant_id), {"type": "message.new", "n": 1})
    await realtime.agroup_send(realtime.user_group(carol.tenant_id, carol.id), {"type": "message.new", "n": 2})
    assert await comm_a.receive_json_from(timeout=3) == {"type": "message.new", "n": 1}
    assert await comm_a.receive_json_from(timeout=3) == {"type": "message.new", "n": 2}
    assert await comm_b.receive_nothing(timeout=0.5)

    # the same numeric user id in another tenant's group never reaches carol
    await realtime.agroup_send(realtime.user_group(ben.tenant_id, carol.id), {"type": "message.new", "n": 3})
    assert await comm_a.receive_nothing(timeout=0.5)
    await comm_a.disconnect()
    await comm_b.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_console_presence_counts_tabs_once_and_clears_on_disconnect(carol):
    from anmei.common.presence import online_user_ids

    # given carol opens the console in two tabs
    tabs = []
    for _ in range(2):
        comm = ws("/ws/console/", await sync_to_async(ws_ticket_issue)(user=carol))
        assert (await comm.connect())[0]
        await comm.receive_json_from(timeout=3)
        tabs.append(comm)
    # then she counts once, in her tenant only
    assert await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id) == {carol.id}
    assert await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id + 1000) == set()
    # when she closes one tab, then the other; then she stays online until the last one closes
    await tabs[0].disconnect()
    assert await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id) == {carol.id}
    await tabs[1].disconnect()
    assert await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id) == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("reuse_default", "conversations"), [(True, 1), (False, 6)])
def test_concurrent_conversation_creates_leave_one_default(tenant_a, reuse_default, conversations):
    from anmei.conversations.services import conversation_create
    from tests.helpers import race

    # given a customer without conversations
    customer = make_user(tenant_a, "newcomer")

    # when six writers open a conversation for them at once
    def open_one(_: int) -> tuple[int, bool]:
        conversation, created = conversation_create(
            customer=customer, channel="wecom", bot_name="AI助手", reuse_default=reuse_default
        )
        return conversation.id, created

    results = race(6, open_one)

    # then exactly one is their default: reusing writers all get it, the others one each
    stored = Conversation.objects.filter(customer=customer)
    assert (stored.count(), stored.filter(is_default=True).count()) == (conversations, 1)
    assert len({conversation_id for conversation_id, _ in results}) == conversations
    assert sum(created for _, created in results) == conversations
