from __future__ import annotations

from django.contrib import admin

from anmei.audit.models import AuditEntry
from anmei.audit.services import audit_changes, audit_record, audit_snapshot
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("at", "tenant", "actor_username", "door", "action", "object_type", "object_id")
    list_filter = ("door", "object_type", "action")
    search_fields = ("actor_username", "object_id")

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedAdminMixin:
    """Write the audit row of an admin save or delete through `audit_record`.

    The admin's change view runs in one transaction, so the row commits with the change. Set
    `audit_object_type` (API.md's names) and `audit_secret_fields` (shown as `***`).
    """

    audit_object_type: str = ""
    audit_secret_fields: tuple[str, ...] = ()

    def save_model(self, request, obj, form, change):
        fields = [f for f in form.changed_data if f in {x.name for x in obj._meta.concrete_fields} or hasattr(obj, f)]
        before = audit_snapshot(type(obj).objects.get(pk=obj.pk), fields) if change and obj.pk else {}
        super().save_model(request, obj, form, change)
        audit_record(
            tenant_id=getattr(obj, "tenant_id", None),
            action="update" if change else "create",
            object_type=self.audit_object_type,
            object_id=obj.pk,
            changes=audit_changes(before, audit_snapshot(obj, fields), secrets=self.audit_secret_fields),
            actor=request.user,
        )

    def delete_model(self, request, obj):
        pk, tenant_id = obj.pk, getattr(obj, "tenant_id", None)
        super().delete_model(request, obj)
        audit_record(
            tenant_id=tenant_id, action="delete", object_type=self.audit_object_type, object_id=pk, actor=request.user
        )
