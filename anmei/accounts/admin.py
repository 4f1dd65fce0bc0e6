from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from anmei.accounts.models import AuthToken, User
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin


@admin.register(User)
class UserAdmin(TenantScopedAdmin, DjangoUserAdmin):
    list_display = ("id", "username", "tenant", "role", "nickname", "source", "is_active", "created_at")
    list_filter = ("role", "source", "is_active", "tenant")
    search_fields = ("username", "nickname", "email", "phone", "platform_user_id")
    ordering = ("-id",)
    fieldsets = (
        (None, {"fields": ("tenant", "username", "password", "role")}),
        ("Profile", {"fields": ("nickname", "email", "phone", "source", "platform_user_id")}),
        ("Status", {"fields": ("is_active", "is_staff", "last_login", "created_at")}),
    )
    add_fieldsets = ((None, {"fields": ("tenant", "username", "role", "password1", "password2")}),)
    readonly_fields = ("last_login", "created_at")
    actions = ("deactivate", "revoke_tokens")

    @admin.action(description="Deactivate selected users (and revoke their tokens)")
    def deactivate(self, request, queryset):
        AuthToken.objects.filter(user__in=queryset).delete()
        queryset.update(is_active=False)

    @admin.action(description="Revoke API tokens of selected users")
    def revoke_tokens(self, request, queryset):
        AuthToken.objects.filter(user__in=queryset).delete()


@admin.register(AuthToken)
class AuthTokenAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    tenant_field = "user__tenant"
    list_display = ("prefix", "user", "created_at", "expires_at", "last_used_at")
    search_fields = ("prefix", "user__username")
    exclude = ("key_hash",)
