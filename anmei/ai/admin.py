from __future__ import annotations

from django import forms
from django.contrib import admin

from anmei.ai.models import AgentCall, AgentConfig, CannedResponse, ConversationSummary
from anmei.common import outbound
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


class AgentConfigForm(forms.ModelForm):
    """Secrets are write-only: leave a field empty to keep the stored value; they are never shown."""

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

    def clean_base_url(self):
        value = self.cleaned_data.get("base_url", "")
        error = outbound.config_error(value)  # SSRF: the call itself is guarded too
        if error:
            raise forms.ValidationError(error)
        return value

    def save(self, commit=True):
        config = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            config.api_key = ""
        elif self.cleaned_data.get("api_key"):
            config.api_key = self.cleaned_data["api_key"]
        if self.cleaned_data.get("mcp_group_key"):
            config.mcp_group_key = self.cleaned_data["mcp_group_key"]
        if commit:
            config.save()
        return config


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
