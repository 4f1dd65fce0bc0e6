"""The sidecar's call-log writer: a row that can never be stored does not keep the others out."""

from __future__ import annotations

import pytest
from django.utils import timezone

from anmei.mcp_admin.models import MCPCallLog
from mcp_server.calllog import CallLogWriter
from tests.helpers import poll

pytestmark = pytest.mark.django_db(transaction=True)


def _row(tenant_id: int, tool_name: str) -> dict:
    return {"tenant_id": tenant_id, "tool_name": tool_name, "success": True, "created_at": timezone.now()}


def test_a_row_of_a_deleted_tenant_is_dropped_and_the_rest_is_stored(tenant_a):
    # given a writer flushing often, and calls logged for tenant A and for a tenant deleted meanwhile
    writer = CallLogWriter(batch_size=10, flush_seconds=0.05)
    writer.start()
    try:
        writer.record(_row(tenant_a.id, "get_user_profile"))
        writer.record(_row(tenant_a.id + 1000, "analyze_customer"))
        writer.record(_row(tenant_a.id, "get_conversation_data"))

        # when the writer flushes, and a later call is logged
        first = poll(lambda: MCPCallLog.objects.count() == 2)
        writer.record(_row(tenant_a.id, "get_business_metrics"))
        later = poll(lambda: MCPCallLog.objects.count() == 3)
    finally:
        writer.stop()

    # then tenant A's rows are stored, the impossible one is gone and nothing waits to be retried
    assert (first, later) == (True, True)
    assert sorted(MCPCallLog.objects.values_list("tool_name", flat=True)) == [
        "get_business_metrics",
        "get_conversation_data",
        "get_user_profile",
    ]
    assert writer._backlog == []
