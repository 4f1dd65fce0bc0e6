"""The real MCP sidecar over streamable HTTP: tools, the auth matrix, call logs, hot config.

Each test starts `python -m mcp_server` against the test database (fixture `mcp_sidecar`) and
calls it with the `mcp` SDK client. Every refusal must be an `is_error` result with a structured
`{"error": {"code"}}` AND a call-log row.
"""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection, connections, transaction

from anmei.conversations.models import Conversation, Message
from anmei.mcp_admin.models import MCPCallLog, MCPTool
from anmei.mcp_admin.subject import subject_token_issue
from tests.fixtures_mcp import make_mcp_group, mcp_call, mcp_error_code, mcp_headers, mcp_session, wait_call_logs

pytestmark = pytest.mark.django_db(transaction=True)


async def _in_thread(fn, *args, **kwargs):
    """Run blocking ORM/API work from async test code, closing that thread's DB connections after.

    (A connection left open in an executor thread would keep the test database from being dropped.)
    """

    def run():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def _conversation(customer, consultant=None, status=Conversation.Status.ACTIVE, texts=()):
    conversation = Conversation.objects.create(
        tenant_id=customer.tenant_id, customer=customer, consultant=consultant, status=status, channel="web"
    )
    for text in texts:
        Message.objects.create(
            tenant_id=customer.tenant_id,
            conversation=conversation,
            sender_type=Message.SenderType.CUSTOMER,
            sender=customer,
            content=text,
        )
    return conversation


def test_profile_of_own_customer_is_returned_and_logged_with_caller_app(mcp_sidecar, tenant_a, cathy):
    group, key = make_mcp_group(tenant_a)
    _conversation(cathy)

    result = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=key, caller_app_id="dify-app-1")

    assert result.is_error is False
    profile = result.structured_content
    assert profile["user_id"] == cathy.pk
    assert profile["username"] == "cathy"
    assert profile["nickname"] == "Cathy"
    assert profile["roles"] == ["customer"]
    assert profile["is_new_user"] is True
    assert profile["source"] == "web"
    assert profile["conversation_count"] == 1
    assert profile["open_conversation_count"] == 1
    [row] = wait_call_logs(1)
    assert (row.tool_name, row.success, row.error_code) == ("get_user_profile", True, "")
    assert (row.tenant_id, row.group_id, row.caller_app_id) == (tenant_a.pk, group.pk, "dify-app-1")
    assert row.request == {"user_id": cathy.pk}
    # the log keeps the response's shape, not the customer's data (issue 8 §12; MCP_LOG_RESPONSES)
    assert (row.response["user_id"], row.response["username"]) == (cathy.pk, "[redacted: 5 chars]")
    assert "Cathy" not in str(row.response)
    assert row.duration_ms >= 0


def test_tools_are_listed_with_typed_described_inputs(mcp_sidecar, tenant_a):
    _, key = make_mcp_group(tenant_a)

    async def go():
        async with mcp_session(mcp_sidecar.url, mcp_headers(key=key)) as session:
            return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(go())}

    assert set(tools) == {"get_user_profile", "analyze_customer", "get_conversation_data", "get_business_metrics"}
    user_id = tools["get_user_profile"].input_schema["properties"]["user_id"]
    assert user_id["type"] == "integer" and user_id["description"]
    assert tools["get_user_profile"].input_schema["required"] == ["user_id"]
    limit = tools["get_conversation_data"].input_schema["properties"]["limit"]
    assert (limit["type"], limit["default"], limit["maximum"]) == ("integer", 20, 100)
    assert all(tool.description for tool in tools.values())


def test_tool_list_offers_only_what_the_key_may_call(mcp_sidecar, tenant_a, cathy):
    _, full_key = make_mcp_group(tenant_a, "full")
    _, metrics_key = make_mcp_group(tenant_a, "metrics", tool_names=["get_business_metrics"])
    subject = subject_token_issue(tenant_id=tenant_a.pk, customer_id=cathy.pk)

    async def names(**headers):
        async with mcp_session(mcp_sidecar.url, mcp_headers(**headers)) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    async def go():
        return (
            await names(key=metrics_key),
            await names(key=full_key, subject=subject),
        )

    metrics_only, customer_bound = asyncio.run(go())

    assert metrics_only == ["get_business_metrics"]
    assert customer_bound == ["analyze_customer", "get_conversation_data", "get_user_profile"]


def _connect_error(url: str, **headers) -> BaseException | None:
    """The exception the mcp SDK client raises when the session cannot be opened (None: it opened)."""

    async def go():
        try:
            async with mcp_session(url, mcp_headers(**headers)) as session:
                await session.list_tools()
        except BaseException as exc:  # noqa: BLE001 - the SDK wraps the HTTP error in task groups
            return exc
        return None

    return asyncio.run(go())


def _refusal_codes(exc: BaseException | None) -> set:
    """The refusal codes (and HTTP statuses) found anywhere in the client's (exception group of) errors."""
    found, stack = set(), [exc]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        response = getattr(item, "response", None)
        if response is not None and getattr(response, "status_code", None):
            found.add(response.status_code)
        data = getattr(getattr(item, "error", None), "data", None)
        if isinstance(data, dict) and data.get("code"):
            found.add(data["code"])
        stack.extend(getattr(item, "exceptions", ()) or ())
        stack.extend([item.__cause__, item.__context__])
    return found


def test_wrong_or_missing_key_gets_401_instead_of_an_empty_session(mcp_sidecar, tenant_a):
    import httpx2

    _, key = make_mcp_group(tenant_a)
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}

    # when an agent connects with a wrong key, with none, and with the right one
    wrong = httpx2.post(mcp_sidecar.url, json=init, headers={**accept, "Authorization": "Bearer mcp_key_wrong"})
    missing = httpx2.post(mcp_sidecar.url, json=init, headers=accept)
    sdk_wrong = _connect_error(mcp_sidecar.url, key="mcp_key_wrong")
    sdk_right = _connect_error(mcp_sidecar.url, key=key)

    # then the bad ones get 401 with the reason (the SDK client fails to connect), the good one connects
    assert (wrong.status_code, wrong.json()["error"]["data"]["code"]) == (401, "invalid_key")
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_key"'
    assert (missing.status_code, missing.json()["error"]["data"]["code"]) == (401, "missing_key")
    assert "invalid_key" in _refusal_codes(sdk_wrong), repr(sdk_wrong)
    assert sdk_right is None


def test_missing_and_wrong_keys_are_refused_and_logged_without_tenant(mcp_sidecar, tenant_a, cathy):
    import httpx2

    make_mcp_group(tenant_a)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "get_user_profile", "arguments": {"user_id": cathy.pk}},
    }
    accept = {"Accept": "application/json, text/event-stream"}

    missing = httpx2.post(mcp_sidecar.url, json=call, headers=accept)
    wrong = httpx2.post(
        mcp_sidecar.url, json=call, headers={**accept, "Authorization": "Bearer mcp_key_not-a-real-key"}
    )

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "cathy" not in missing.text + wrong.text
    rows = wait_call_logs(2)
    assert [(r.tool_name, r.error_code, r.success, r.tenant_id, r.group_id) for r in rows] == [
        ("get_user_profile", "missing_key", False, None, None),
        ("get_user_profile", "invalid_key", False, None, None),
    ]


def test_disabled_group_tool_outside_group_and_disabled_tool_are_refused(mcp_sidecar, tenant_a, cathy):
    profile_group, profile_key = make_mcp_group(tenant_a, "profiles", tool_names=["get_user_profile"])
    other_group, other_key = make_mcp_group(tenant_a, "analytics", tool_names=["get_business_metrics"])

    outside = mcp_call(mcp_sidecar.url, "get_business_metrics", {}, key=profile_key)
    MCPTool.objects.filter(tenant=tenant_a, tool_name="get_user_profile").update(enabled=False)
    disabled_tool = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=profile_key)
    other_group.enabled = False
    other_group.save()
    disabled_group = mcp_call(mcp_sidecar.url, "get_business_metrics", {}, key=other_key)
    unknown_tool = mcp_call(mcp_sidecar.url, "drop_tables", {}, key=profile_key)

    assert mcp_error_code(outside) == "tool_not_in_group"
    assert mcp_error_code(disabled_tool) == "tool_disabled"
    assert mcp_error_code(disabled_group) == "group_disabled"
    assert mcp_error_code(unknown_tool) == "tool_not_in_group"
    rows = wait_call_logs(4)
    assert [(r.tool_name, r.error_code, r.group_id, r.tenant_id) for r in rows] == [
        ("get_business_metrics", "tool_not_in_group", profile_group.pk, tenant_a.pk),
        ("get_user_profile", "tool_disabled", profile_group.pk, tenant_a.pk),
        ("get_business_metrics", "group_disabled", other_group.pk, tenant_a.pk),
        ("drop_tables", "tool_not_in_group", profile_group.pk, tenant_a.pk),
    ]
    assert not any(r.success for r in rows)


def test_other_tenants_ids_are_refused_like_unknown_ids(mcp_sidecar, tenant_a, cathy, carol, bill):
    _, key = make_mcp_group(tenant_a)
    bills_conversation = _conversation(bill, texts=["secret beta message"])

    results = {
        "other_tenant_user": mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": bill.pk}, key=key),
        "other_tenant_analysis": mcp_call(mcp_sidecar.url, "analyze_customer", {"user_id": bill.pk}, key=key),
        "other_tenant_conversation": mcp_call(
            mcp_sidecar.url, "get_conversation_data", {"conversation_id": bills_conversation.pk}, key=key
        ),
        "unknown_user": mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": 10**9}, key=key),
        "staff_is_not_a_customer": mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": carol.pk}, key=key),
    }

    assert {name: mcp_error_code(r) for name, r in results.items()} == dict.fromkeys(results, "not_found")
    assert all("bill" not in str(r.content) and "secret" not in str(r.content) for r in results.values())
    rows = wait_call_logs(5)
    assert {r.error_code for r in rows} == {"not_found"} and all(r.tenant_id == tenant_a.pk for r in rows)


def test_invalid_arguments_are_refused_and_logged(mcp_sidecar, tenant_a):
    _, key = make_mcp_group(tenant_a)

    bad_type = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": "abc"}, key=key)
    out_of_range = mcp_call(mcp_sidecar.url, "get_conversation_data", {"conversation_id": 1, "limit": 1000}, key=key)

    assert mcp_error_code(bad_type) == "invalid_arguments"
    assert mcp_error_code(out_of_range) == "invalid_arguments"
    assert [r.error_code for r in wait_call_logs(2)] == ["invalid_arguments", "invalid_arguments"]


def test_subject_token_binds_customer_level_tools_to_one_customer(mcp_sidecar, tenant_a, tenant_b, cathy, bill):
    from tests.conftest import make_user

    _, key = make_mcp_group(tenant_a)
    dora = make_user(tenant_a, "dora", nickname="Dora")
    doras_conversation = _conversation(dora)
    cathys_conversation = _conversation(cathy)
    cathy_subject = subject_token_issue(tenant_id=tenant_a.pk, customer_id=cathy.pk)
    url = mcp_sidecar.url

    own = mcp_call(url, "get_user_profile", {"user_id": cathy.pk}, key=key, subject=cathy_subject)
    own_conversation = mcp_call(
        url, "get_conversation_data", {"conversation_id": cathys_conversation.pk}, key=key, subject=cathy_subject
    )
    codes = {
        "other_customer_profile": mcp_call(
            url, "get_user_profile", {"user_id": dora.pk}, key=key, subject=cathy_subject
        ),
        "other_customer_analysis": mcp_call(
            url, "analyze_customer", {"user_id": dora.pk}, key=key, subject=cathy_subject
        ),
        "other_customer_conversation": mcp_call(
            url, "get_conversation_data", {"conversation_id": doras_conversation.pk}, key=key, subject=cathy_subject
        ),
        "expired": mcp_call(
            url,
            "get_user_profile",
            {"user_id": cathy.pk},
            key=key,
            subject=subject_token_issue(tenant_id=tenant_a.pk, customer_id=cathy.pk, ttl_seconds=-1),
        ),
        "tampered": mcp_call(
            url, "get_user_profile", {"user_id": cathy.pk}, key=key, subject=cathy_subject[:-2] + "xx"
        ),
        "other_tenant_subject": mcp_call(
            url,
            "get_user_profile",
            {"user_id": cathy.pk},
            key=key,
            subject=subject_token_issue(tenant_id=tenant_b.pk, customer_id=bill.pk),
        ),
        "tenant_wide_tool": mcp_call(url, "get_business_metrics", {}, key=key, subject=cathy_subject),
    }

    assert own.is_error is False and own.structured_content["user_id"] == cathy.pk
    assert own_conversation.is_error is False
    assert {name: mcp_error_code(r) for name, r in codes.items()} == {
        "other_customer_profile": "subject_mismatch",
        "other_customer_analysis": "subject_mismatch",
        "other_customer_conversation": "subject_mismatch",
        "expired": "subject_expired",
        "tampered": "subject_invalid",
        "other_tenant_subject": "subject_mismatch",
        "tenant_wide_tool": "subject_not_allowed",
    }
    assert "dora" not in str(codes["other_customer_profile"].content).lower()
    rows = wait_call_logs(9)
    assert [r.success for r in rows] == [True, True] + [False] * 7
    assert rows[0].subject_customer_id == cathy.pk


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="uses a PostgreSQL table lock to make a call slow")
def test_call_exceeding_its_tool_timeout_is_cut_off_and_logged(mcp_sidecar, tenant_a, cathy):
    _, key = make_mcp_group(tenant_a)
    MCPTool.objects.filter(tenant=tenant_a, tool_name="get_user_profile").update(timeout_seconds=1)

    # Given a transaction holding an exclusive lock on the users table, the tool's read blocks.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE accounts_user IN ACCESS EXCLUSIVE MODE")
        result = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=key)

    assert mcp_error_code(result) == "timeout"
    [row] = wait_call_logs(1)
    assert (row.error_code, row.success) == ("timeout", False)
    assert 1000 <= row.duration_ms < 5000
    # Once the lock is gone the same tool answers again.
    assert mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=key).is_error is False


def test_admin_changes_apply_on_the_next_call_of_an_open_session(mcp_sidecar, tenant_a, alice, cathy, as_user):
    group, key = make_mcp_group(tenant_a, "main")
    spare, _ = make_mcp_group(tenant_a, "spare", tool_names=[])
    tool = MCPTool.objects.get(tenant=tenant_a, tool_name="get_user_profile")
    admin = as_user(alice)

    changes = [
        ("put", f"/api/v1/mcp-config/tools/{tool.pk}", {"enabled": False}),
        ("put", f"/api/v1/mcp-config/tools/{tool.pk}", {"enabled": True}),
        ("put", f"/api/v1/mcp-config/tools/{tool.pk}", {"group_id": spare.pk}),
        ("put", f"/api/v1/mcp-config/tools/{tool.pk}", {"group_id": group.pk}),
        ("patch", f"/api/v1/mcp-config/groups/{group.pk}", {"enabled": False}),
        ("patch", f"/api/v1/mcp-config/groups/{group.pk}", {"enabled": True}),
    ]

    async def go():
        async with mcp_session(mcp_sidecar.url, mcp_headers(key=key)) as session:
            codes = [mcp_error_code(await session.call_tool("get_user_profile", {"user_id": cathy.pk}))]
            for method, path, body in changes:
                response = await _in_thread(getattr(admin, method), path, body, format="json")
                assert response.status_code == 200, response.content
                codes.append(mcp_error_code(await session.call_tool("get_user_profile", {"user_id": cathy.pk})))
        return codes

    assert asyncio.run(go()) == [None, "tool_disabled", None, "tool_not_in_group", None, "group_disabled", None]
    assert len(wait_call_logs(7)) == 7


def test_regenerated_key_fails_on_the_very_next_call_and_the_new_key_works(
    mcp_sidecar, tenant_a, alice, cathy, as_user
):
    group, old_key = make_mcp_group(tenant_a)
    headers = mcp_headers(key=old_key)
    admin = as_user(alice)

    async def go():
        async with mcp_session(mcp_sidecar.url, headers) as session:
            before = await session.call_tool("get_user_profile", {"user_id": cathy.pk})
        response = await _in_thread(admin.post, f"/api/v1/mcp-config/groups/{group.pk}/regenerate-key")
        try:
            async with mcp_session(mcp_sidecar.url, headers) as session:
                await session.call_tool("get_user_profile", {"user_id": cathy.pk})
            after = None
        except BaseException as exc:  # noqa: BLE001 - the SDK wraps the 401 in task groups
            after = exc
        async with mcp_session(mcp_sidecar.url, mcp_headers(key=response.json()["api_key"])) as session:
            with_new = await session.call_tool("get_user_profile", {"user_id": cathy.pk})
        return before, response, after, with_new

    before, response, after, with_new = asyncio.run(go())

    assert response.status_code == 200
    assert before.is_error is False
    assert "invalid_key" in _refusal_codes(after), repr(after)
    assert with_new.is_error is False and with_new.structured_content["username"] == "cathy"
    assert [r.error_code for r in wait_call_logs(2)] == ["", ""]


def test_call_log_rows_queued_before_sigterm_are_written_on_shutdown(mcp_sidecar_factory, tenant_a, cathy):
    _, key = make_mcp_group(tenant_a)
    # A flush interval far longer than the test: only the shutdown drain can write the rows.
    sidecar = mcp_sidecar_factory(MCP_LOG_FLUSH_SECONDS="600", MCP_LOG_BATCH_SIZE="1000")

    async def go():
        async with mcp_session(sidecar.url, mcp_headers(key=key, caller_app_id="drain")) as session:
            for _ in range(5):
                assert (await session.call_tool("get_user_profile", {"user_id": cathy.pk})).is_error is False

    asyncio.run(go())
    assert MCPCallLog.objects.count() == 0  # still queued: logging is off the request path

    assert sidecar.stop() == 0

    assert MCPCallLog.objects.filter(caller_app_id="drain", success=True).count() == 5


def test_analysis_conversation_and_business_metrics_report_tenant_data(mcp_sidecar, tenant_a, cathy, carol, bill):
    _, key = make_mcp_group(tenant_a)
    open_conversation = _conversation(
        cathy, consultant=carol, texts=["双眼皮手术价格多少", "双眼皮恢复期多久", "price of botox please"]
    )
    _conversation(cathy, status=Conversation.Status.ENDED, texts=["hello again"])
    _conversation(bill, texts=["beta only"])
    url = mcp_sidecar.url

    analysis = mcp_call(url, "analyze_customer", {"user_id": cathy.pk}, key=key).structured_content
    data = mcp_call(url, "get_conversation_data", {"conversation_id": open_conversation.pk, "limit": 2}, key=key)
    metrics = mcp_call(url, "get_business_metrics", {"days": 7}, key=key).structured_content

    assert analysis["visit_count"] == 2
    assert analysis["customer_type"] == "returning"
    assert analysis["message_count"] == 4
    assert analysis["top_keywords"][0] == {"keyword": "双眼皮", "count": 2}
    assert [c["conversation_id"] for c in analysis["open_conversations"]] == [open_conversation.pk]
    assert analysis["open_conversations"][0]["consultant"] == "Carol"
    conversation = data.structured_content
    assert conversation["status"] == "active"
    assert conversation["consultant"] == {"user_id": carol.pk, "nickname": "Carol"}
    assert conversation["message_count"] == 3
    assert [m["content"] for m in conversation["messages"]] == ["双眼皮恢复期多久", "price of botox please"]
    assert metrics["registrations"] == 1  # cathy (carol is staff; bill is tenant B)
    assert metrics["conversations"] == 2
    assert metrics["conversations_by_status"] == {"active": 1, "ended": 1}
    assert metrics["messages"] == 4
    assert metrics["automation"] == {"registrations": 1, "welcomed": 0, "success_rate": 0.0}


def test_tool_config_data_hides_profile_fields_and_caps_messages_on_the_next_call(mcp_sidecar, tenant_a, cathy):
    _, key = make_mcp_group(tenant_a)
    conversation = _conversation(cathy, texts=["one", "two", "three"])
    MCPTool.objects.filter(tenant=tenant_a, tool_name="get_user_profile").update(
        config_data={"hide_fields": ["email", "phone", "username"]}
    )
    MCPTool.objects.filter(tenant=tenant_a, tool_name="get_conversation_data").update(config_data={"max_messages": 1})

    profile = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=key).structured_content
    data = mcp_call(
        mcp_sidecar.url, "get_conversation_data", {"conversation_id": conversation.pk, "limit": 50}, key=key
    ).structured_content

    assert "email" not in profile and "phone" not in profile
    assert profile["username"] == "cathy" and profile["nickname"] == "Cathy"  # never hideable
    assert [m["content"] for m in data["messages"]] == ["three"]
