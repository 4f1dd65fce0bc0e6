"""Bot reads, tenant-scoped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from anmei.blacklist.selectors import blacklist_version
from anmei.bots.models import BotInstance, GatewaySettings
from anmei.common.errors import NotFoundError
from anmei.conversations.selectors import conversation_settings_get


def bot_list(*, tenant_id: int) -> QuerySet[BotInstance]:
    return BotInstance.objects.filter(tenant_id=tenant_id).order_by("id")


def bot_get(*, tenant_id: int, bot_id: int) -> BotInstance:
    bot = BotInstance.objects.filter(tenant_id=tenant_id, pk=bot_id).first()
    if bot is None:
        raise NotFoundError("bot")
    return bot


def gateway_settings_get(*, tenant_id: int) -> GatewaySettings:
    """The tenant's bot delivery retry knobs, or the unsaved defaults while it has no row (reads never write)."""
    return GatewaySettings.objects.filter(tenant_id=tenant_id).first() or GatewaySettings(tenant_id=tenant_id)


def bot_config_get(*, bot: BotInstance) -> dict[str, Any]:
    """The configuration document a bot pulls at start and after a config_version change (API.md)."""
    conversation_settings = conversation_settings_get(tenant_id=bot.tenant_id)
    return {
        "bot_id": bot.id,
        "name": bot.name,
        "platform": bot.platform,
        "config_version": bot.config_version,
        "blacklist_version": blacklist_version(tenant_id=bot.tenant_id),
        "auto_reply": {"enabled": conversation_settings.auto_reply_enabled, "rules": bot.auto_reply_rules},
        "away_message": bot.away_message or conversation_settings.away_message,
        "heartbeat_interval_seconds": max(settings.BOT_STALE_AFTER_SECONDS // 3, 10),
    }


def bot_instances_liveness_counts() -> dict[str, dict[str, int]]:
    """Active bot instances per platform, and how many are stale (no heartbeat within the window)."""
    cutoff = timezone.now() - timedelta(seconds=settings.BOT_STALE_AFTER_SECONDS)
    rows = (
        BotInstance.objects.filter(status=BotInstance.Status.ACTIVE)
        .values("platform")
        .annotate(
            active=Count("id"),
            stale=Count("id", filter=Q(last_heartbeat_at__isnull=True) | Q(last_heartbeat_at__lt=cutoff)),
        )
        .order_by("platform")
    )
    return {row["platform"]: {"active": row["active"], "stale": row["stale"]} for row in rows}
