"""Message search: every filter, stable cursor pages, Chinese substrings, isolation, the trigram index."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, Message
from tests.conftest import make_user
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]

URL = "/api/v1/conversations/messages/search"
T0 = timezone.now().replace(microsecond=0) - timedelta(days=10)


@pytest.fixture
def corpus(tenant_a, tenant_b, cathy, carol, bill):
    """Two customers of tenant A (one handled by Carol, one by Cora), one of tenant B."""
    cora = make_user(tenant_a, "cora", User.Role.CONSULTANT)
    dora = make_user(tenant_a, "dora", nickname="小红")
    conv_cathy = Conversation.objects.create(tenant=tenant_a, customer=cathy, consultant=carol, status="active")
    conv_dora = Conversation.objects.create(tenant=tenant_a, customer=dora, consultant=cora, status="active")
    conv_bill = Conversation.objects.create(tenant=tenant_b, customer=bill, status="waiting")
    rows = [
        (conv_cathy, "customer", "text", "请问玻尿酸注射的价格是多少？", 0),
        (conv_cathy, "consultant", "text", "玻尿酸注射价格在3000元左右", 1),
        (conv_cathy, "customer", "image", "https://img.example/face.png", 2),
        (conv_dora, "customer", "text", "我想预约光子嫩肤", 3),
        (conv_dora, "consultant", "text", "好的，光子嫩肤本周六有空位", 4),
        (conv_dora, "customer", "voice", "voice/abc.ogg", 5),
        (conv_bill, "customer", "text", "玻尿酸 in tenant beta", 6),
    ]
    made = {}
    for conversation, sender, kind, content, day in rows:
        message = Message.objects.create(
            tenant=conversation.tenant, conversation=conversation, sender_type=sender, type=kind, content=content
        )
        Message.objects.filter(pk=message.pk).update(created_at=T0 + timedelta(days=day))
        made[content] = message.id
    blocked = Message.objects.create(
        tenant=tenant_a, conversation=conv_dora, sender_type="customer", content="玻尿酸 blocked spam", is_blocked=True
    )
    made["blocked"] = blocked.id
    return {"ids": made, "cora": cora, "dora": dora, "conv_cathy": conv_cathy}


def _search(client, query: str = "") -> list[str]:
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 200, response.json()
    return [m["content"] for m in response.json()["results"]]


def test_chinese_keyword_substring_newest_first(corpus, carol, as_user):
    assert _search(as_user(carol), "q=玻尿酸注射") == ["玻尿酸注射价格在3000元左右", "请问玻尿酸注射的价格是多少？"]
    assert _search(as_user(carol), "q=嫩肤") == ["好的，光子嫩肤本周六有空位", "我想预约光子嫩肤"]


def test_each_filter(corpus, carol, cathy, as_user):
    client = as_user(carol)
    dora, cora = corpus["dora"], corpus["cora"]
    assert len(_search(client, f"customer={cathy.id}")) == 3
    assert _search(client, "customer_nickname=小红&type=text") == ["好的，光子嫩肤本周六有空位", "我想预约光子嫩肤"]
    assert _search(client, f"consultant={cora.id}&sender_type=customer") == ["voice/abc.ogg", "我想预约光子嫩肤"]
    assert _search(client, "type=image") == ["https://img.example/face.png"]
    after, before = (T0 + timedelta(days=1)).isoformat(), (T0 + timedelta(days=3)).isoformat()
    assert _search(client, f"after={after.replace('+', '%2B')}&before={before.replace('+', '%2B')}") == [
        "https://img.example/face.png",
        "玻尿酸注射价格在3000元左右",
    ]
    assert _search(client, f"customer={dora.id}&q=价格") == []
    assert "玻尿酸 blocked spam" in _search(client, "q=玻尿酸&include_blocked=true")
    assert "玻尿酸 blocked spam" not in _search(client, "q=玻尿酸")


def test_cursor_pages_are_stable_while_new_messages_arrive(corpus, carol, as_user):
    client = as_user(carol)
    seen: list[int] = []
    page = client.get(f"{URL}?page_size=2").json()
    seen += [m["id"] for m in page["results"]]
    # a message arriving between pages is newer than the cursor: it neither shifts nor repeats rows
    Message.objects.create(
        tenant=corpus["conv_cathy"].tenant,
        conversation=corpus["conv_cathy"],
        sender_type="customer",
        content="late arrival",
    )
    while page["next_cursor"]:
        page = client.get(f"{URL}?page_size=2&cursor={page['next_cursor']}").json()
        seen += [m["id"] for m in page["results"]]
    expected = [
        corpus["ids"][c]
        for c in [
            "voice/abc.ogg",
            "好的，光子嫩肤本周六有空位",
            "我想预约光子嫩肤",
            "https://img.example/face.png",
            "玻尿酸注射价格在3000元左右",
            "请问玻尿酸注射的价格是多少？",
        ]
    ]
    assert seen == expected


def test_ties_on_created_at_are_broken_by_id(corpus, carol, as_user):
    Message.objects.filter(tenant=corpus["conv_cathy"].tenant).update(created_at=T0)
    client = as_user(carol)
    seen: list[int] = []
    cursor = ""
    while True:
        page = client.get(f"{URL}?page_size=4{'&cursor=' + cursor if cursor else ''}").json()
        seen += [m["id"] for m in page["results"]]
        if not page["next_cursor"]:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 6


def test_other_tenant_sees_none_of_it(corpus, ben, as_user):
    assert _search(as_user(ben), "q=玻尿酸") == ["玻尿酸 in tenant beta"]


def test_customers_cannot_search(corpus, cathy, as_user):
    assert_error(as_user(cathy).get(f"{URL}?q=x"), 403)


@pytest.mark.parametrize(
    "query",
    [
        "cursor=%%%",
        "cursor=bm90LWEtY3Vyc29y",
        "type=video",
        "page_size=0",
        "page_size=101",
        "after=2026-01-02T00:00:00Z&before=2026-01-01T00:00:00Z",
        "customer=abc",
    ],
)
def test_bad_search_parameters_are_400(corpus, carol, as_user, query):
    assert_error(as_user(carol).get(f"{URL}?{query}"), 400)


def test_postgres_keyword_search_can_use_the_trigram_index(corpus):
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    qs = Message.objects.filter(content__icontains="玻尿酸注射")
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_content_upper_trgm" in plan, plan
