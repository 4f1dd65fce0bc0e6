from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from anmei.audit.admin import AuditedAdminMixin
from anmei.automation import services
from anmei.automation.models import AutomationRun, AutomationSettings, AutomationStep
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin, TenantSettingsForm
from anmei.common.errors import ApplicationError


class AutomationSettingsForm(TenantSettingsForm):
    """The push gateway secret is write-only: leave it empty to keep the stored one; it is never shown."""

    secret_fields = ("push_gateway_secret",)
    endpoint_url_fields = ("push_gateway_url",)

    push_gateway_secret = forms.CharField(
        required=False, max_length=256, widget=forms.PasswordInput, help_text="signs webhook bodies (HMAC-SHA256)"
    )
    clear_push_gateway_secret = forms.BooleanField(required=False)

    class Meta:
        model = AutomationSettings
        fields = [
            "tenant",
            "enabled",
            "retry_countdowns",
            "max_retries",
            "notify_consultants",
            "notification_backend",
            "push_gateway_url",
            "welcome_template",
            "welcome_returning",
        ]


@admin.register(AutomationSettings)
class AutomationSettingsAdmin(AuditedAdminMixin, TenantScopedAdmin):
    audit_object_type = "automation_settings"

    """Run-time settings: tasks read them on every step, so a save applies to the next step."""

    form = AutomationSettingsForm

    list_display = (
        "tenant",
        "enabled",
        "retry_countdowns",
        "max_retries",
        "notify_consultants",
        "notification_backend",
        "updated_at",
    )
    list_filter = ("enabled", "notification_backend")


class AutomationStepInline(admin.TabularInline):
    model = AutomationStep
    extra = 0
    can_delete = False
    fields = ("generation", "step", "attempt", "success", "duration_ms", "countdown", "error", "details", "started_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AutomationRun)
class AutomationRunAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "id",
        "tenant",
        "customer",
        "status",
        "generation",
        "welcome_source",
        "failed_step",
        "end_to_end_ms",
        "started_at",
    )
    list_filter = ("status", "welcome_source", "failed_step", "tenant")
    search_fields = ("customer__username", "error")
    inlines = [AutomationStepInline]
    actions = ("retry_failed",)
    readonly_fields = [f.name for f in AutomationRun._meta.fields]

    def has_change_permission(self, request, obj=None):
        # Viewing is allowed (read-only fields); the retry action needs the change permission.
        return self._allowed(request)

    @admin.action(description="Retry selected failed or stuck runs")
    def retry_failed(self, request, queryset):
        retried = 0
        for run in queryset:
            try:
                services.automation_run_retry(run=run)
                retried += 1
            except ApplicationError as exc:
                self.message_user(request, f"run #{run.pk}: {exc.message}", level=messages.WARNING)
        if retried:
            self.message_user(request, f"{retried} run(s) started again")


@admin.register(AutomationStep)
class AutomationStepAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "run", "step", "attempt", "success", "duration_ms", "countdown", "error", "started_at")
    list_filter = ("step", "success")
    readonly_fields = [f.name for f in AutomationStep._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False
