from __future__ import annotations

from django.contrib import admin, messages

from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.jobs.models import Job
from anmei.jobs.services import job_reschedule


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "kind", "key", "state", "attempts", "max_attempts", "next_attempt_at", "resent", "updated_at")
    list_filter = ("state", "kind")
    search_fields = ("key",)
    ordering = ("-id",)
    actions = ["run_again"]

    @admin.action(description="Run again from the first attempt")
    def run_again(self, request, queryset):
        count = sum(job_reschedule(job_id=job.id) for job in queryset.exclude(state=Job.State.DONE))
        self.message_user(request, f"{count} job(s) scheduled again.", messages.SUCCESS)
