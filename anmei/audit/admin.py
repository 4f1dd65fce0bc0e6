from __future__ import annotations

from django.contrib import admin

from anmei.audit.models import AuditEntry
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("at", "tenant", "actor_username", "door", "action", "object_type", "object_id")
    list_filter = ("door", "object_type", "action")
    search_fields = ("actor_username", "object_id")

    def has_delete_permission(self, request, obj=None):
        return False
