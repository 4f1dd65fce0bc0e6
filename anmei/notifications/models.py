from __future__ import annotations

from django.conf import settings
from django.db import models


class AdminAlert(models.Model):
    """Something an admin must look at (a run that exhausted its retries, an unreachable bot)."""

    class Level(models.TextChoices):
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"
        CRITICAL = "critical", "Critical"

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE)
    source = models.CharField(max_length=64, help_text="e.g. registration_automation, blacklist_push")
    code = models.CharField(max_length=64)
    level = models.CharField(max_length=16, choices=Level.choices, default=Level.ERROR)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True, help_text="one alert per incident, however often raised")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = "管理员告警"
        verbose_name_plural = "管理员告警"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"[{self.level}] {self.source}: {self.code}"


class Notification(models.Model):
    """A message for one staff member who was offline when it happened (e.g. a new customer).

    `dedupe_key` makes creation idempotent: a retried or redelivered automation step finds the
    row it made before instead of notifying twice. The backend that carries it is recorded; every
    undelivered row is also shown on the recipient's next console connection.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent through the backend"
        FAILED = "failed", "Backend failed"
        DELIVERED = "delivered", "Shown on the console"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    backend = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    dedupe_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "通知"
        verbose_name_plural = "通知"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "dedupe_key"], name="notification_dedupe_unique_per_tenant"),
        ]
        indexes = [models.Index(fields=["tenant", "user", "delivered_at"])]

    def __str__(self) -> str:
        return f"{self.kind} → {self.user_id} ({self.status})"
