"""API keys in Django admin: list, usage, revoke; a new key is shown once after adding it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from anmei.apikeys import services
from anmei.apikeys.models import ApiKey, ApiKeyAudit
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    list_display = (
        "id",
        "name",
        "prefix",
        "tenant",
        "scopes",
        "usage_count",
        "last_used_at",
        "revoked_at",
        "created_at",
    )
    list_filter = ("tenant",)
    search_fields = ("name", "prefix")
    readonly_fields = (
        "tenant",
        "name",
        "prefix",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "usage_count",
        "revoked_at",
    )
    exclude = ("key_hash",)
    actions = ("revoke",)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ["name", "scopes"]
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def has_add_permission(self, request):
        return getattr(request.user, "role", None) == "admin" and request.user.tenant_id is not None

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for its audit trail

    def save_model(self, request, obj, form, change):
        if change:
            return
        api_key, key = services.api_key_create(actor=request.user, name=obj.name, scopes=form.cleaned_data["scopes"])
        obj.pk = api_key.pk
        obj.__dict__.update({k: v for k, v in api_key.__dict__.items() if not k.startswith("_")})
        self.message_user(request, f"API key created; copy it now, it is not shown again: {key}", messages.WARNING)

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(actor=request.user, api_key_id=api_key.pk)


@admin.register(ApiKeyAudit)
class ApiKeyAuditAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("created_at", "api_key", "action", "actor", "tenant")
    list_filter = ("action", "tenant")
