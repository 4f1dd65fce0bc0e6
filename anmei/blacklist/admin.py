"""Django admin for the blacklist: entries (changes are versioned and pushed), pushes, interceptions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from anmei.blacklist import services
from anmei.blacklist.models import (
    BlacklistBotCursor,
    BlacklistChange,
    BlacklistEntry,
    BlacklistInterception,
    InterceptionReport,
)
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return [("yes", "expired"), ("no", "in force")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "no":
            return queryset.exclude(expires_at__lte=now)
        return queryset


@admin.register(BlacklistEntry)
class BlacklistEntryAdmin(TenantScopedAdmin):
    """Adds and deletes go through the services so that every change is versioned and pushed."""

    list_display = ("id", "tenant", "platform", "platform_user_id", "reason", "expires_at", "created_by", "created_at")
    list_filter = ("platform", ExpiredFilter, "tenant")
    search_fields = ("platform_user_id", "reason")
    fields = ("tenant", "platform", "platform_user_id", "reason", "expires_at")

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", "platform", "platform_user_id") if obj else ()

    def save_model(self, request, obj, form, change):
        if change:
            services.blacklist_entry_update(
                tenant_id=obj.tenant_id, entry_id=obj.pk, reason=obj.reason, expires_at=obj.expires_at
            )
            return
        tenant_id = obj.tenant_id if self._is_operator(request) else request.user.tenant_id
        entry, _ = services.blacklist_entry_add(
            tenant_id=tenant_id,
            actor=request.user,
            platform=obj.platform,
            user_id=obj.platform_user_id,
            reason=obj.reason,
            expires_at=obj.expires_at,
        )
        obj.pk = entry.pk

    def delete_model(self, request, obj):
        services.blacklist_entry_remove(tenant_id=obj.tenant_id, entry_id=obj.pk)

    def delete_queryset(self, request, queryset):
        by_tenant: dict[int, list[dict]] = {}
        for entry in queryset:
            by_tenant.setdefault(entry.tenant_id, []).append(
                {"platform": entry.platform, "user_id": entry.platform_user_id}
            )
        for tenant_id, entries in by_tenant.items():
            services.blacklist_batch_remove(tenant_id=tenant_id, entries=entries)
        messages.info(request, "removals pushed to the tenant's bots as one change per tenant")


@admin.register(BlacklistChange)
class BlacklistChangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "tenant", "version", "action", "reason", "created_at")
    list_filter = ("action", "reason", "tenant")


@admin.register(BlacklistBotCursor)
class BlacklistBotCursorAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    tenant_field = "bot__tenant"
    list_display = ("bot", "acknowledged_version", "attempts", "next_attempt_at", "last_error", "last_pushed_at")


@admin.register(BlacklistInterception)
class BlacklistInterceptionAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("tenant", "platform", "platform_user_id", "count", "last_blocked_at", "last_source", "last_reason")
    list_filter = ("platform", "last_source", "tenant")
    search_fields = ("platform_user_id",)


@admin.register(InterceptionReport)
class InterceptionReportAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "tenant", "bot", "platform", "platform_user_id", "source", "message_status", "created_at")
    list_filter = ("source", "platform", "tenant")
