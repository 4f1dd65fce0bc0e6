"""Registration automation: run-time settings per tenant, and a record of every run and step attempt."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

# The default welcome when the agent fails, times out or is switched off.
DEFAULT_WELCOME_TEMPLATE = (
    "欢迎来到安美智享！🌟\n\n"
    "我是您的专属AI咨询助手，很高兴为您服务。\n"
    "您可以随时向我咨询医美相关问题，获得个性化的美容建议。"
)

JOB_KIND = "automation"  # each step's durable job (anmei.jobs): key run:<run id>:<generation>:<step>
STEPS = ("create_default_conversation", "generate_welcome", "deliver_welcome", "notify_consultants", "record_metrics")


def _default_countdowns() -> list[float]:
    return list(settings.AUTOMATION_RETRY_COUNTDOWNS)


def validate_countdowns(value) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x <= 3600 for x in value)
    ):
        raise ValidationError("a non-empty list of seconds between 0 and 3600, e.g. [5, 15, 60]")


def validate_notification_backend(value: str) -> None:
    if value not in settings.NOTIFICATION_BACKENDS:
        raise ValidationError(f"unknown backend; configured: {', '.join(sorted(settings.NOTIFICATION_BACKENDS))}")


class AutomationSettings(models.Model):
    """What admins change at run time: read by every task, so an edit applies to the next step."""

    class NotificationBackend(models.TextChoices):
        STORED = "stored", "Stored (shown on next console connect)"
        WEBHOOK = "webhook", "Webhook to a push gateway"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="automation_settings")
    enabled = models.BooleanField(default=True, help_text="off: registrations start no automation run")
    retry_countdowns = models.JSONField(
        default=_default_countdowns, validators=[validate_countdowns], help_text="seconds before retry 1, 2, 3…"
    )
    max_retries = models.PositiveIntegerField(default=3)
    notify_consultants = models.BooleanField(default=True)
    notification_backend = models.CharField(
        max_length=32,
        default=NotificationBackend.STORED,
        validators=[validate_notification_backend],
        help_text="a name of settings.NOTIFICATION_BACKENDS: stored (shown on next console connect), webhook, …",
    )
    push_gateway_url = models.URLField(blank=True, help_text="webhook backend: where notifications are POSTed")
    # Encrypted like every other secret an admin sets (anmei.common.crypto); `push_gateway_secret` reads it.
    push_gateway_secret_encrypted = models.TextField(blank=True, editable=False)
    welcome_template = models.TextField(default=DEFAULT_WELCOME_TEMPLATE, help_text="used when the agent fails")
    welcome_returning = models.BooleanField(
        default=True, help_text="also welcome a conversation a returning customer opens after an earlier one ended"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "注册自动化设置"
        verbose_name_plural = "注册自动化设置"

    def __str__(self) -> str:
        return f"{self.tenant} automation ({'on' if self.enabled else 'off'})"

    @property
    def push_gateway_secret(self) -> str:
        """The secret that signs webhook bodies (HMAC-SHA256); stored only encrypted."""
        from anmei.common.crypto import decrypt

        return decrypt(self.push_gateway_secret_encrypted) if self.push_gateway_secret_encrypted else ""

    @push_gateway_secret.setter
    def push_gateway_secret(self, value: str) -> None:
        from anmei.common.crypto import encrypt

        self.push_gateway_secret_encrypted = encrypt(value) if value else ""

    def countdown_for(self, retry_number: int) -> float:
        """Seconds to wait before retry `retry_number` (1-based); the last value repeats."""
        countdowns = self.retry_countdowns or [5, 15, 60]
        return float(countdowns[min(retry_number, len(countdowns)) - 1])


class AutomationRun(models.Model):
    """One customer's automation: one run per customer, ever (a retry from admin reuses it)."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="automation_runs")
    customer = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="automation_run")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    generation = models.PositiveIntegerField(default=0, help_text="bumped by each retry from admin")
    conversation = models.ForeignKey(
        "conversations.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    welcome_message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    welcome_text = models.TextField(blank=True)
    welcome_source = models.CharField(max_length=16, blank=True, help_text="agent or template")
    welcome_provider = models.CharField(max_length=16, blank=True)
    agent_error = models.CharField(max_length=500, blank=True)
    consultants_notified = models.JSONField(default=dict, blank=True)
    failed_step = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    welcome_delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    end_to_end_ms = models.FloatField(null=True, blank=True, help_text="registration commit → run finished")

    class Meta:
        verbose_name = "注册自动化运行"
        verbose_name_plural = "注册自动化运行"
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-started_at"]),
            models.Index(fields=["tenant", "-started_at"]),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} for {self.customer_id} ({self.status})"


class AutomationStep(models.Model):
    """One attempt of one step. `countdown` is the delay scheduled before the next attempt, if any."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    run = models.ForeignKey(AutomationRun, on_delete=models.CASCADE, related_name="steps")
    generation = models.PositiveIntegerField(default=0)
    step = models.CharField(max_length=40, choices=[(s, s) for s in STEPS])
    attempt = models.PositiveIntegerField()
    success = models.BooleanField()
    duration_ms = models.FloatField()
    error = models.CharField(max_length=500, blank=True)
    countdown = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()

    class Meta:
        verbose_name = "注册自动化步骤"
        verbose_name_plural = "注册自动化步骤"
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "generation", "step", "attempt"], name="automation_step_attempt_unique"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "success", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.step} #{self.attempt} {'ok' if self.success else 'failed'}"
