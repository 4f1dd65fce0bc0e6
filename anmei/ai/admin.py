from __future__ import annotations

import re

from django import forms
from django.contrib import admin

from anmei.ai.models import AgentCall, AgentConfig, CannedResponse, ConversationSummary
from anmei.ai.templating import template_validator
from anmei.audit.admin import AuditedAdminMixin
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
class AgentConfigAdmin(AuditedAdminMixin, TenantScopedAdmin):
    audit_object_type = "agent_config"
    audit_secret_fields = ("api_key", "mcp_group_key", "api_key_encrypted", "mcp_group_key_encrypted")

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


_KEYWORD_SPLIT = re.compile(r"[\s,，、;；]+")


class CannedResponseForm(forms.ModelForm):
    """Keywords typed as words (`玻尿酸, 价格` or one per line), not as a JSON list."""

    keywords = forms.CharField(
        required=False,
        label="关键词",
        widget=forms.TextInput(attrs={"placeholder": "玻尿酸, 价格, 疼不疼", "size": 60}),
        help_text="逗号、顿号或空格分隔；顾客消息含其中任一词时推荐这条话术",
    )
    tenant_id_for_admin: int | None = None  # set by the admin for tenant admins (no tenant field)

    class Meta:
        model = CannedResponse
        fields = ("tenant", "shortcode", "text", "keywords")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.keywords, list):
            self.initial["keywords"] = ", ".join(str(k) for k in self.instance.keywords)

    def clean_keywords(self) -> list[str]:
        words = [w for w in _KEYWORD_SPLIT.split(self.cleaned_data.get("keywords") or "") if w]
        unique = list(dict.fromkeys(words))
        if len(unique) > 20 or any(len(w) > 32 for w in unique):
            raise forms.ValidationError("最多 20 个关键词，每个不超过 32 个字")
        return unique

    def clean(self):
        cleaned = super().clean()
        tenant_id = self.tenant_id_for_admin or getattr(cleaned.get("tenant"), "id", None)
        shortcode = cleaned.get("shortcode")
        if tenant_id and shortcode:
            taken = CannedResponse.objects.filter(tenant_id=tenant_id, shortcode=shortcode)
            if self.instance.pk:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("shortcode", "这个快捷码已被使用")
        return cleaned


@admin.register(CannedResponse)
class CannedResponseAdmin(TenantScopedAdmin):
    form = CannedResponseForm
    list_display = ("shortcode", "tenant", "text", "keywords", "updated_at")
    search_fields = ("shortcode", "text")

    def get_fields(self, request, obj=None):
        # A tenant admin has one tenant: it is preset (save_model), not picked from "---------".
        fields = ("shortcode", "text", "keywords")
        return ("tenant", *fields) if self._is_operator(request) else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if not self._is_operator(request):
            form.tenant_id_for_admin = request.user.tenant_id
        return form


@admin.register(ConversationSummary)
class ConversationSummaryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("conversation", "tenant", "status", "model", "generation", "updated_at")
    list_filter = ("status", "model")
    readonly_fields = [f.name for f in ConversationSummary._meta.fields]
    actions = ["regenerate"]

    @admin.action(description="Regenerate the selected summaries")
    def regenerate(self, request, queryset):
        from anmei.ai.services.summaries import summary_regenerate

        for summary in queryset:
            summary_regenerate(summary=summary)
        self.message_user(request, f"{queryset.count()} summaries queued for regeneration")
