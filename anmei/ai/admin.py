from __future__ import annotations

from django import forms
from django.contrib import admin

from anmei.ai.models import AgentCall, AgentConfig, CannedResponse, ConversationSummary
from anmei.ai.templating import template_validator
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin, TenantSettingsForm


class AgentConfigForm(TenantSettingsForm):
    """Secrets are write-only: leave a field empty to keep the stored value; they are never shown."""

    secret_fields = ("api_key", "mcp_group_key")
    public_url_fields = ("base_url",)

    api_key = forms.CharField(required=False, widget=forms.PasswordInput, help_text="Dify app key / LLM API key")
    mcp_group_key = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="mcp_key_… of the tool group the agent uses"
    )
    clear_api_key = forms.BooleanField(required=False)
    # Session intelligence knobs: optional here (left empty, the stored value is kept).
    context_token_budget = forms.IntegerField(required=False, min_value=0, help_text="0 = the provider's default")
    monthly_token_quota = forms.IntegerField(required=False, min_value=0, help_text="0 = unlimited")
    price_prompt_per_1k = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=6)
    price_completion_per_1k = forms.DecimalField(required=False, min_value=0, max_digits=12, decimal_places=6)
    OPTIONAL = ("context_token_budget", "monthly_token_quota", "price_prompt_per_1k", "price_completion_per_1k")

    def clean_welcome_template(self):
        template = self.cleaned_data.get("welcome_template") or ""
        template_validator(template)
        return template

    def clean(self):
        cleaned = super().clean()
        for name in self.OPTIONAL:
            if cleaned.get(name) is None:
                cleaned[name] = getattr(self.instance, name)
        return cleaned

    class Meta:
        model = AgentConfig
        fields = [
            "tenant",
            "provider",
            "enabled",
            "base_url",
            "app_id",
            "model",
            "timeout_seconds",
            "welcome_template",
            "breaker_threshold",
            "breaker_cooldown_seconds",
            "context_token_budget",
            "stream",
            "monthly_token_quota",
            "price_prompt_per_1k",
            "price_completion_per_1k",
        ]


@admin.register(AgentConfig)
class AgentConfigAdmin(TenantScopedAdmin):
    form = AgentConfigForm
    list_display = ("tenant", "provider", "enabled", "base_url", "model", "timeout_seconds", "has_key", "updated_at")
    list_filter = ("provider", "enabled")

    @admin.display(boolean=True, description="key set")
    def has_key(self, obj):
        return bool(obj.api_key_encrypted)


@admin.register(AgentCall)
class AgentCallAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "id",
        "tenant",
        "provider",
        "purpose",
        "success",
        "duration_ms",
        "total_tokens",
        "error",
        "created_at",
    )
    list_filter = ("provider", "purpose", "success")
    readonly_fields = [f.name for f in AgentCall._meta.fields]


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    list_display = ("shortcode", "tenant", "text", "keywords", "updated_at")
    search_fields = ("shortcode", "text")


@admin.register(ConversationSummary)
class ConversationSummaryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("conversation", "tenant", "status", "model", "generation", "updated_at")
    list_filter = ("status", "model")
    readonly_fields = [f.name for f in ConversationSummary._meta.fields]
    actions = ["regenerate"]

    @admin.action(description="Regenerate the selected summaries")
    def regenerate(self, request, queryset):
        from anmei.ai.summaries import summary_regenerate

        for summary in queryset:
            summary_regenerate(summary=summary)
        self.message_user(request, f"{queryset.count()} summaries queued for regeneration")
