"""Django admin scoped by tenant: tenant admins see and edit only their own tenant's rows."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from anmei.common import outbound
from anmei.common.permissions import is_operator


class TenantScopedAdmin(admin.ModelAdmin):
    """Operators (superusers) see everything; a tenant admin sees rows of `tenant_field` == theirs."""

    tenant_field = "tenant"

    def _is_operator(self, request) -> bool:
        return is_operator(request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self._is_operator(request):
            return qs
        return qs.filter(**{self.tenant_field: request.user.tenant_id})

    def get_list_display(self, request):
        """A tenant admin has one tenant: its column would repeat it on every row (and widen the list)."""
        columns = super().get_list_display(request)
        if self._is_operator(request):
            return columns
        return tuple(c for c in columns if c != "tenant")

    def get_list_filter(self, request):
        """Operators get every filter; a tenant admin's sidebar offers only their tenant's values.

        The tenant filter is dropped, and foreign-key filters list only related rows that appear in
        the (tenant-scoped) change list, not every tenant's (RelatedFieldListFilter lists all rows).
        """
        filters = super().get_list_filter(request)
        if self._is_operator(request):
            return filters
        scoped = []
        for item in filters:
            if isinstance(item, str):
                if item == "tenant" or item.startswith("tenant__"):
                    continue
                field = self.model._meta.get_field(item) if "__" not in item else None
                if field is not None and field.is_relation:
                    item = (item, admin.RelatedOnlyFieldListFilter)
            scoped.append(item)
        return tuple(scoped)

    def _allowed(self, request) -> bool:
        user = request.user
        return self._is_operator(request) or (getattr(user, "role", None) == "admin" and user.tenant_id is not None)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)

    def save_model(self, request, obj, form, change):
        if not self._is_operator(request) and self.tenant_field == "tenant" and hasattr(obj, "tenant_id"):
            obj.tenant_id = request.user.tenant_id
        super().save_model(request, obj, form, change)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Offer only the admin's own tenant (and its users) in foreign-key pickers."""
        if not self._is_operator(request):
            model = db_field.remote_field.model
            if model._meta.label == "tenants.Tenant":
                kwargs["queryset"] = model.objects.filter(pk=request.user.tenant_id)
            elif any(f.name == "tenant" for f in model._meta.fields):
                kwargs["queryset"] = model.objects.filter(tenant_id=request.user.tenant_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TenantSettingsForm(forms.ModelForm):
    """A tenant's integration settings in the admin: write-only secrets and public-only URLs.

    Each name in `secret_fields` is a form field the model does not render: left empty it keeps the
    stored value (never shown), and a `clear_<name>` box empties it. Each name in
    `public_url_fields` (a base we append paths to) or `endpoint_url_fields` (called as it is, so
    it may carry a query) goes through `outbound.config_error`, as the API's `TenantURLField` does
    (SSRF; the call itself is guarded too).
    """

    secret_fields: tuple[str, ...] = ()
    public_url_fields: tuple[str, ...] = ()
    endpoint_url_fields: tuple[str, ...] = ()

    def clean(self):
        cleaned = super().clean()
        for names, base in ((self.public_url_fields, True), (self.endpoint_url_fields, False)):
            for name in names:
                error = outbound.config_error(cleaned.get(name) or "", base=base)
                if error:
                    self.add_error(name, error)
        return cleaned

    def save(self, commit=True):
        obj = super().save(commit=False)
        for name in self.secret_fields:
            if self.cleaned_data.get(f"clear_{name}"):
                setattr(obj, name, "")
            elif self.cleaned_data.get(name):
                setattr(obj, name, self.cleaned_data[name])
        if commit:
            obj.save()
        return obj
