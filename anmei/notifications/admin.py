from django.contrib import admin

from anmei.common.admin import TenantScopedAdmin
from anmei.notifications import services
from anmei.notifications.models import AdminAlert, Notification


@admin.register(AdminAlert)
class AdminAlertAdmin(TenantScopedAdmin):
    list_display = ("id", "tenant", "level", "source", "code", "message", "created_at", "acknowledged_at")
    list_filter = ("level", "source", "tenant", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("code", "message", "dedupe_key")
    readonly_fields = (
        "tenant",
        "source",
        "code",
        "level",
        "message",
        "details",
        "dedupe_key",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ("acknowledge",)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset):
        for alert in queryset:
            services.admin_alert_acknowledge(alert=alert, user=request.user)


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin):
    list_display = ("id", "tenant", "user", "kind", "backend", "status", "attempts", "created_at", "delivered_at")
    list_filter = ("kind", "backend", "status")
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False
