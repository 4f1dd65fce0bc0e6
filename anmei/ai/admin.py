from __future__ import annotations

from django import forms
from django.contrib import admin

from anmei.ai.models import AgentCall, AgentConfig
from anmei.common import outbound
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


class AgentConfigForm(forms.ModelForm):
    """Secrets are write-only: leave a field empty to keep the stored value; they are never shown."""

    api_key = forms.CharField(required=False, widget=forms.PasswordInput, help_text="Dify app key / LLM API key")
    mcp_group_key = forms.CharField(
        required=False, widget=forms.PasswordInput, help_text="mcp_key_… of the tool group the agent uses"
    )
    clear_api_key = forms.BooleanField(required=False)

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
