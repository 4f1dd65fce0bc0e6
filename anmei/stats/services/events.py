"""Storing reporting events. Those of conversations are derived by every rollup from the
conversation tables (`rebuild.reporting_events_derive`); stats' own facts (ratings) are written
in the transaction that stores them (a crash after that commit cannot lose them). Idempotent by
the unique (tenant, key): a repeat is a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anmei.stats.models import ReportingEvent

K = ReportingEvent.Kind


def reporting_event_record(
    *,
    tenant_id: int,
    kind: str,
    key: str,
    conversation_id: int,
    occurred_at: datetime,
    consultant_id: int | None = None,
    channel: str = "",
    value_s: float | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Store one event unless its key is already there; return whether it was stored now."""
    _, created = ReportingEvent.objects.get_or_create(
        tenant_id=tenant_id,
        key=key,
        defaults={
            "kind": kind,
            "conversation_id": conversation_id,
            "consultant_id": consultant_id,
            "channel": channel,
            "value_s": value_s,
            "data": data or {},
            "occurred_at": occurred_at,
        },
    )
    return created
