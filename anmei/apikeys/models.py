"""Tenant API keys (API.md "Tenant API keys"): shown once, stored as prefix + SHA-256."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        CONVERSATIONS_READ = "conversations:read"
        MESSAGES_WRITE = "messages:write"
        STATS_READ = "stats:read"
        BLACKLIST_READ = "blacklist:read"
        BLACKLIST_WRITE = "blacklist:write"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    # The tenant admin who created the key: requests made with it act with that admin's tenant and
    # are attributed to them (a message sent through `messages:write`), limited to the key's scopes.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    usage_count = models.PositiveBigIntegerField(default=0)
    rate_limit_per_minute = models.PositiveIntegerField(default=120)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API 密钥"
        verbose_name_plural = "API 密钥"
        ordering = ["-id"]
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeyAudit(models.Model):
    """Who created or revoked which key, when (the key itself is never recorded)."""

    class Action(models.TextChoices):
        CREATED = "created"
        REVOKED = "revoked"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_key_audits")
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="audits")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "API 密钥审计记录"
        verbose_name_plural = "API 密钥审计记录"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.api_key_id}"
