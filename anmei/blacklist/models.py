"""Blacklist entries, the per-tenant version and change log, per-bot push cursors, interceptions."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class BlacklistEntry(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="blacklist_entries")
    platform = models.CharField(max_length=16)
    platform_user_id = models.CharField(max_length=128)
    reason = models.CharField(max_length=255, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "黑名单条目"
        verbose_name_plural = "黑名单条目"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "platform", "platform_user_id"], name="blacklist_entry_unique_per_tenant"
            )
        ]
        indexes = [models.Index(fields=["tenant", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.platform}:{self.platform_user_id}"


class BlacklistState(models.Model):
    """The tenant's blacklist version; its row is locked while a change takes the next number."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="blacklist_state")
    version = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} v{self.version}"


class BlacklistChange(models.Model):
    """One versioned change (a single entry or a whole batch): exactly what is pushed to bots."""

    class Action(models.TextChoices):
        ADD = "add", "Add"
        REMOVE = "remove", "Remove"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    data = models.JSONField(default=dict)
    reason = models.CharField(max_length=32, default="admin", help_text="admin, batch, expiry")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "黑名单变更"
        verbose_name_plural = "黑名单变更"
        ordering = ["tenant", "version"]
        constraints = [models.UniqueConstraint(fields=["tenant", "version"], name="blacklist_change_version_unique")]

    def __str__(self) -> str:
        return f"tenant {self.tenant_id} v{self.version} {self.action}"


class BlacklistBotCursor(models.Model):
    """How far a bot has acknowledged the tenant's change log; claimed by the push task (one sender per bot).

    Versions after `acknowledged_version` are pushed in order; a version that exhausted its retries
    is skipped (the bot sees the gap in versions and re-pulls the full list).
    """

    bot = models.OneToOneField("bots.BotInstance", on_delete=models.CASCADE, related_name="blacklist_cursor")
    acknowledged_version = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="failed attempts at the next version")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_pushed_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="a push task holds this bot until then (claimed by a conditional UPDATE)"
    )

    class Meta:
        verbose_name = "黑名单同步游标"
        verbose_name_plural = "黑名单同步游标"

    def __str__(self) -> str:
        return f"bot {self.bot_id} acked v{self.acknowledged_version}"


class BlacklistInterception(models.Model):
    """Interception statistics per user and platform (bot reports and the platform's own check)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    platform = models.CharField(max_length=16)
    platform_user_id = models.CharField(max_length=128)
    count = models.PositiveIntegerField(default=0)
    last_blocked_at = models.DateTimeField(null=True, blank=True)
    last_source = models.CharField(max_length=16, blank=True, help_text="bot (reported) or platform (our check)")
    last_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        verbose_name = "黑名单拦截"
        verbose_name_plural = "黑名单拦截"
        ordering = ["-last_blocked_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "platform", "platform_user_id"], name="blacklist_interception_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.platform_user_id} ×{self.count}"


class InterceptionReport(models.Model):
    """Audit log: one row per blocked message (reported by a bot or caught by the platform)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey("bots.BotInstance", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    platform = models.CharField(max_length=16)
    platform_user_id = models.CharField(max_length=128)
    source = models.CharField(max_length=16)
    message_status = models.CharField(max_length=64, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True, help_text="the bot's timestamp")
    external_id = models.CharField(
        max_length=160, blank=True, default="", help_text="bot:<bot id>:<message id> of a forwarded message we blocked"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "拦截上报"
        verbose_name_plural = "拦截上报"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["tenant", "platform", "platform_user_id"]),
            models.Index(fields=["tenant", "created_at"]),
        ]
        constraints = [
            # A bot that re-sends a blocked message (same message_id) is counted once.
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(external_id=""),
                name="interception_report_external_id_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.platform}:{self.platform_user_id}"
