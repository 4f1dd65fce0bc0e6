"""The audit trail of tenant configuration: one row per change, written with the change itself."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    class Door(models.TextChoices):
        API = "api"
        ADMIN = "admin"
        COMMAND = "command"
        SYSTEM = "system"

    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from the foreign key so the row still names who acted after the user is deleted.
    actor_username = models.CharField(max_length=150, blank=True)
    door = models.CharField(max_length=16, choices=Door.choices)
    action = models.CharField(max_length=32)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "配置审计记录"
        verbose_name_plural = "配置审计记录"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "at"]), models.Index(fields=["tenant", "object_type", "at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id} by {self.actor_username or '-'}"
