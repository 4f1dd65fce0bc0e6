"""The beat task on a real Celery worker, and get_business_metrics over the real MCP sidecar."""

from __future__ import annotations

from django.utils import timezone

from anmei.conversations.models import Conversation, Message
from anmei.stats.models import StatsHourly, StatsSettings
from tests.fixtures_mcp import make_mcp_group, mcp_call
from tests.helpers import poll


def _conversation_with_message(customer, text="玻尿酸多少钱") -> Conversation:
    conversation = Conversation.objects.create(tenant_id=customer.tenant_id, customer=customer)
    Message.objects.create(
        tenant_id=customer.tenant_id, conversation=conversation, sender_type="customer", content=text
    )
    return conversation


def test_the_beat_task_rolls_up_every_tenant_on_a_worker(celery_worker, cathy, bill):
    from workers.stats import rollup_recent

    _conversation_with_message(cathy)
    _conversation_with_message(bill)
    _conversation_with_message(bill)

    rollup_recent.delay()

    assert poll(lambda: StatsSettings.objects.filter(rolled_until__isnull=False).count() == 2, timeout=30)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    rows = {
        (row.tenant_id, row.conversations, row.customer_messages)
        for row in StatsHourly.objects.filter(hour__gte=hour - timezone.timedelta(hours=1))
    }
    assert rows == {(cathy.tenant_id, 1, 1), (bill.tenant_id, 2, 2)}


def test_get_business_metrics_serves_the_rollups_of_the_callers_tenant(mcp_sidecar, tenant_a, cathy, bill):
    from anmei.stats.services.windows import rollup_recent

    _conversation_with_message(cathy)
    _conversation_with_message(bill)
    for tenant_id in (cathy.tenant_id, bill.tenant_id):
        rollup_recent(tenant_id=tenant_id)
    _, key = make_mcp_group(tenant_a)

    metrics = mcp_call(mcp_sidecar.url, "get_business_metrics", {"days": 1}, key=key).structured_content

    statistics = metrics["statistics"]
    assert statistics["customers"] == {"total": 1, "new": 1, "returning": 0}
    assert statistics["conversations"]["total"] == 1
    assert statistics["channels"] == [{"channel": "web", "count": 1}]
    assert statistics["as_of"] == StatsSettings.objects.get(tenant=tenant_a).rolled_until.isoformat()
