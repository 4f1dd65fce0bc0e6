"""The sidecar over stdio (`python -m mcp_server --stdio`): credentials come from its environment."""

from __future__ import annotations

import asyncio
import tempfile

import pytest

from tests.fixtures_mcp import PYTHON, ROOT, make_mcp_group, mcp_error_code, sidecar_env, wait_call_logs

pytestmark = pytest.mark.django_db(transaction=True)


def _run_stdio(env: dict[str, str], calls: list[tuple[str, dict]]):
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=PYTHON, args=["-m", "mcp_server", "--stdio"], env=env, cwd=str(ROOT))

    async def go():
        with tempfile.TemporaryFile(mode="w+") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = (await session.list_tools()).tools
                    results = [await session.call_tool(name, args) for name, args in calls]
            return tools, results

    return asyncio.run(go())


def test_stdio_transport_lists_tools_and_answers_a_call(tenant_a, cathy):
    group, key = make_mcp_group(tenant_a)
    env = sidecar_env(MCP_API_KEY=key, MCP_CALLER_APP_ID="stdio-client")

    tools, [profile, foreign] = _run_stdio(
        env, [("get_user_profile", {"user_id": cathy.pk}), ("get_user_profile", {"user_id": 10**9})]
    )

    assert sorted(t.name for t in tools) == [
        "analyze_customer",
        "get_business_metrics",
        "get_conversation_data",
        "get_user_profile",
    ]
    assert profile.is_error is False
    assert (profile.structured_content["username"], profile.structured_content["nickname"]) == ("cathy", "Cathy")
    assert mcp_error_code(foreign) == "not_found"
    # The process ended when the client closed stdin: its queued log rows were drained on the way out.
    rows = [(r.caller_app_id, r.group_id, r.success) for r in wait_call_logs(2)]
    assert rows == [("stdio-client", group.pk, True), ("stdio-client", group.pk, False)]


def test_stdio_without_a_key_is_refused(tenant_a, cathy):
    make_mcp_group(tenant_a)
    env = sidecar_env()
    env.pop("MCP_API_KEY", None)

    _, [result] = _run_stdio(env, [("get_user_profile", {"user_id": cathy.pk})])

    assert mcp_error_code(result) == "missing_key"
