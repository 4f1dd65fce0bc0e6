"""Bot reads, tenant-scoped."""

from __future__ import annotations

from django.db.models import QuerySet

from anmei.bots.models import BotInstance
from anmei.common.errors import NotFoundError


def bot_list(*, tenant_id: int) -> QuerySet[BotInstance]:
    return BotInstance.objects.filter(tenant_id=tenant_id).order_by("id")


def bot_get(*, tenant_id: int, bot_id: int) -> BotInstance:
    bot = BotInstance.objects.filter(tenant_id=tenant_id, pk=bot_id).first()
    if bot is None:
        raise NotFoundError("bot")
    return bot
