"""Turn what a test did so far into an earlier clinic day, without a fake clock in product code.

Every stored moment of a tenant's day (conversations, messages, their events, ratings, reporting
events, customers' registrations, interceptions, deliveries, automation runs) is moved by the same
amount, so the block keeps its order and durations and ends at noon of the previous day in the
tenant's zone; then the statistics of the hours and days touched are rolled up again for explicit
dates (anmei.stats.services.rollup), as the periodic rollup would.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone


def _moved_models():
    from anmei.accounts.models import User
    from anmei.automation.models import AutomationRun, AutomationStep
    from anmei.blacklist.models import BlacklistInterception
    from anmei.bots.models import BotDelivery
    from anmei.conversations.models import Conversation, ConversationEvent, Message
    from anmei.stats.models import Rating, ReportingEvent

    return [
        (User.objects.filter(role=User.Role.CUSTOMER), ["created_at", "date_joined"]),
        (Conversation.objects, ["created_at", "updated_at", "last_message_at", "ended_at"]),
        (Message.objects, ["created_at"]),
        (ConversationEvent.objects, ["created_at"]),
        (Rating.objects, ["created_at"]),
        (ReportingEvent.objects, ["occurred_at", "created_at"]),
        (BlacklistInterception.objects, ["last_blocked_at"]),
        (BotDelivery.objects, ["created_at", "sent_at"]),
        (AutomationRun.objects, ["started_at", "welcome_delivered_at", "finished_at"]),
        (AutomationStep.objects, ["started_at", "finished_at"]),
    ]


def move_to_previous_day(*, tenant_id: int, zone: str) -> date:
    """Move everything of the tenant stored until now to the previous local day; return that day."""
    tz = ZoneInfo(zone)
    now = timezone.now()
    today = now.astimezone(tz).date()
    previous = today - timedelta(days=1)
    delta = now - datetime.combine(previous, time(12), tz)
    with transaction.atomic():
        for queryset, fields in _moved_models():
            queryset = queryset.filter(tenant_id=tenant_id)
            for field in fields:
                queryset.filter(**{f"{field}__lte": now}).update(**{field: F(field) - delta})
    rollup_again(tenant_id=tenant_id, first=previous, last=today, zone=tz)
    return previous


def rollup_again(*, tenant_id: int, first: date, last: date, zone: ZoneInfo) -> None:
    """Roll every UTC hour of the local days first..last up again, then the days themselves."""
    from anmei.stats.services.rollup import floor_hour, local_day_bounds, rollup_day, rollup_hour

    hour = floor_hour(local_day_bounds(first, zone)[0])
    end = local_day_bounds(last, zone)[1]
    while hour < end:
        rollup_hour(tenant_id=tenant_id, hour=hour, zone=zone)
        hour += timedelta(hours=1)
    day = first
    while day <= last:
        rollup_day(tenant_id=tenant_id, day=day, zone=zone)
        day += timedelta(days=1)
