"""IM bot instances, the tenant's run-time delivery retry settings, and outbound delivery records."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from anmei.common.platforms import Platform


class BotInstance(models.Model):
    """One running bot (e.g. an AstrBot instance) that relays an IM platform for a tenant.

    The token authenticates the bot to us (stored as SHA-256 only, shown once). The signing secret
    signs our pushes to the bot, so we must be able to read it back: it is stored Fernet-encrypted.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DISABLED = "disabled", "Disabled"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="bot_instances")
    name = models.CharField(max_length=64)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    callback_url = models.URLField(max_length=300, help_text="base URL; pushes go to <callback_url>/astrbot-api/v1/…")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    secret_encrypted = models.TextField(editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    config_version = models.PositiveIntegerField(default=1, help_text="bumped whenever the bot's config changes")
    away_message = models.TextField(blank=True, help_text="overrides the tenant's away message when set")
    auto_reply_rules = models.JSONField(
        default=list, blank=True, help_text='[{"keyword": "价格", "reply": "…"}]: checked before the AI gateway'
    )
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_reported_status = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "机器人实例"
        verbose_name_plural = "机器人实例"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="bot_name_unique_per_tenant")]
        indexes = [models.Index(fields=["tenant", "status"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"

    # DRF treats the authenticated bot as request.user; it is not a person but it is authenticated.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_stale(self) -> bool:
        """No heartbeat within BOT_STALE_AFTER_SECONDS: the instance is probably down."""
        if self.last_heartbeat_at is None:
            return True
        return timezone.now() - self.last_heartbeat_at > timedelta(seconds=settings.BOT_STALE_AFTER_SECONDS)


def _default_countdowns() -> list[float]:
    return list(settings.BOT_RETRY_COUNTDOWNS)


class GatewaySettings(models.Model):
    """Per-tenant delivery knobs of the bot gateway, read at each attempt: change them in admin, no restart.

    A row is created with the env defaults the first time a tenant needs it. The conversation knobs
    (auto-reply, away message, inactivity timeout) live in `conversations.ConversationSettings`.
    """

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="gateway_settings")
    retry_countdowns = models.JSONField(
        default=_default_countdowns, help_text="seconds before each retry of a bot callback or push, e.g. [5, 15, 60]"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "网关设置"
        verbose_name_plural = "网关设置"

    def __str__(self) -> str:
        return f"gateway settings of tenant {self.tenant_id}"

    def clean(self) -> None:
        """Refuse a schedule the tasks could not use (admin form validation)."""
        from django.core.exceptions import ValidationError

        value = self.retry_countdowns
        if (
            not isinstance(value, list)
            or len(value) > 10
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 3600 for v in value)
        ):
            raise ValidationError({"retry_countdowns": "a list of up to 10 numbers of seconds (0–3600)"})

    @property
    def countdowns(self) -> list[float]:
        """The retry schedule as floats; a row edited outside the admin falls back to the env default."""
        try:
            self.clean()
        except Exception:  # noqa: BLE001 - bad data must not crash a retrying task
            return [float(v) for v in settings.BOT_RETRY_COUNTDOWNS]
        return [float(v) for v in self.retry_countdowns]


class BotDelivery(models.Model):
    """One outbound message to an IM customer through a bot's callback: the idempotency record.

    A redelivered or retried task finds the row `sent` and does nothing.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed (user blocked / no bot)"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    message = models.OneToOneField("conversations.Message", on_delete=models.CASCADE, related_name="bot_delivery")
    bot = models.ForeignKey(BotInstance, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "机器人投递"
        verbose_name_plural = "机器人投递"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"message {self.message_id} → bot {self.bot_id}: {self.status}"
