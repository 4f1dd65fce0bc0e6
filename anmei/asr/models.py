"""One transcription per voice message: its id, lifecycle, result or failure."""

from __future__ import annotations

from django.db import models


class AsrTask(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        SUCCESS = "success", "Success"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="asr_tasks")
    asr_task_id = models.CharField(max_length=64, unique=True, help_text="public id returned to the bot")
    message = models.OneToOneField(
        "conversations.Message", on_delete=models.CASCADE, related_name="asr_task", help_text="one task per message"
    )
    conversation_id = models.BigIntegerField()
    media_key = models.CharField(max_length=300, help_text="storage key of the encrypted audio")
    media_mime = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    confidence = models.FloatField(null=True, blank=True, help_text="exp(mean token log-probability)")
    language = models.CharField(max_length=16, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="audio seconds")
    transcribe_ms = models.FloatField(null=True, blank=True, help_text="the model's own time for the last attempt")
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    backend = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    job_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "语音转写任务"
        verbose_name_plural = "语音转写任务"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "status", "-created_at"], name="asr_task_tenant_status_idx")]

    def __str__(self) -> str:
        return f"{self.asr_task_id} ({self.status})"
