from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from anmei.asr.models import AsrTask
from anmei.asr.selectors import asr_task_audio_url
from anmei.asr.services import asr_task_retry
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.common.errors import ApplicationError


@admin.register(AsrTask)
class AsrTaskAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Failures show their code and message; "Transcribe again" retries the selected failed tasks."""

    list_display = ("asr_task_id", "tenant", "status", "error_code", "attempts", "language", "duration", "created_at")
    list_filter = ("status", "error_code", "backend")
    search_fields = ("asr_task_id", "text")
    ordering = ("-id",)
    readonly_fields = ("audio",)
    exclude = ("media_key",)
    actions = ["transcribe_again"]

    @admin.display(description="audio")
    def audio(self, obj: AsrTask) -> str:
        url = asr_task_audio_url(obj)
        return format_html('<audio controls preload="none" src="{}"></audio>', url)

    @admin.action(description="Transcribe again (failed tasks)")
    def transcribe_again(self, request, queryset):
        tasks = list(queryset)
        done = 0
        for task in tasks:
            if task.status != AsrTask.Status.FAILED:
                continue
            try:
                asr_task_retry(task=task)
                done += 1
            except ApplicationError:  # changed meanwhile (an attempt is running): counted as skipped
                pass
        skipped = len(tasks) - done
        self.message_user(request, f"{done} task(s) scheduled again, {skipped} skipped.", messages.SUCCESS)
