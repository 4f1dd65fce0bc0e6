from django.contrib import admin, messages

from anmei.common.permissions import is_operator
from anmei.tenants import services
from anmei.tenants.models import Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "slug", "status", "contact_email", "created_at", "approved_at")
    list_filter = ("status",)
    search_fields = ("name", "slug", "contact_email")
    readonly_fields = ("created_at", "approved_at")
    actions = ("approve", "suspend")

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return is_operator(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_operator(request.user)

    @admin.action(description="Approve selected tenants")
    def approve(self, request, queryset):
        for tenant in queryset:
            services.tenant_approve(tenant=tenant)
        self.message_user(request, f"approved {queryset.count()} tenant(s)", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset):
        for tenant in queryset:
            services.tenant_suspend(tenant=tenant)
        self.message_user(request, f"suspended {queryset.count()} tenant(s)", messages.WARNING)
