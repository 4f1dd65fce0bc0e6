"""The record of every pending unit of background work: the database, not the broker.

A Job row is written in the same transaction as the change that causes the work; Celery only
carries its id as the fast path. When a message is lost (broker restart, killed worker, failed
publish) the row is still there, due, and `jobs_sweep` sends it again.
"""

from __future__ import annotations

from django.db import models


class Job(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE)
    kind = models.CharField(max_length=64, help_text="the pipeline, e.g. automation, bots.delivery, asr")
    key = models.CharField(max_length=200, help_text="idempotency key, unique per kind")
    task = models.CharField(max_length=200, help_text="Celery task name; called with the job id")
    queue = models.CharField(max_length=64, blank=True, help_text="empty: the task's route decides")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=4)
    retry_countdowns = models.JSONField(default=list, blank=True, help_text="seconds before attempt 2, 3, …")
    lease_seconds = models.PositiveIntegerField(default=120)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True)
    resent = models.PositiveIntegerField(default=0, help_text="times the sweep re-sent the job's message")
    lost = models.PositiveIntegerField(
        default=0, help_text="of those, times its message was provably lost (in no queue, held by no worker)"
    )
    last_error = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "后台任务"
        verbose_name_plural = "后台任务"
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="job_kind_key_unique")]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="job_due_idx"),
            models.Index(fields=["tenant", "kind", "state"], name="job_tenant_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} ({self.state})"

    @property
    def is_last_attempt(self) -> bool:
        """True while running the attempt after which a failure is final."""
        return self.attempts >= self.max_attempts
