from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.core.exceptions import ValidationError

from anmei.accounts import services
from anmei.accounts.models import AuthToken, User
from anmei.audit.admin import AuditedAdminMixin
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.common.permissions import is_operator

# Roles a tenant admin may give: never above their own (operators are platform accounts).
_TENANT_ROLES = [
    (User.Role.CUSTOMER, "Customer"),
    (User.Role.CONSULTANT, "Consultant"),
    (User.Role.ADMIN, "Tenant admin"),
]


class TenantUserCreationForm(AdminUserCreationForm):
    """Usernames are unique per tenant: Django's check looks across every tenant, which refused a
    free name and told a tenant admin which usernames other tenants use."""

    admin_tenant_id: int | None = None  # a tenant admin's own tenant (set per request by the admin)

    def clean_username(self):
        username = self.cleaned_data.get("username")
        tenant = self.cleaned_data.get("tenant")
        tenant_id = self.admin_tenant_id if self.admin_tenant_id is not None else getattr(tenant, "pk", None)
        if username and User.objects.filter(username__iexact=username, tenant_id=tenant_id).exists():
            self._update_errors(ValidationError({"username": self.instance.unique_error_message(User, ["username"])}))
        return username


@admin.register(User)
class UserAdmin(AuditedAdminMixin, TenantScopedAdmin, DjangoUserAdmin):
    audit_object_type = "user"
    audit_secret_fields = ("password", "password1", "password2")

    list_display = ("id", "username", "tenant", "role", "nickname", "source", "is_active", "created_at")
    list_filter = ("role", "source", "is_active", "tenant")
    search_fields = ("username", "nickname", "email", "phone", "platform_user_id")
    ordering = ("-id",)
    fieldsets = (
        (None, {"fields": ("tenant", "username", "password", "role")}),
        ("Profile", {"fields": ("nickname", "email", "phone", "source", "platform_user_id")}),
        ("Status", {"fields": ("is_active", "is_staff", "is_superuser", "last_login", "created_at")}),
    )
    add_fieldsets = ((None, {"fields": ("tenant", "username", "role", "password1", "password2")}),)
    add_form = TenantUserCreationForm
    # Staff/superuser follow the role (User.save); nobody sets them in a form.
    readonly_fields = ("last_login", "created_at", "is_staff", "is_superuser")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if is_operator(request.user) else (*fields, "tenant")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None and issubclass(form, TenantUserCreationForm):
            tenant_id = None if is_operator(request.user) else request.user.tenant_id
            form = type(form.__name__, (form,), {"admin_tenant_id": tenant_id})
        return form

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not is_operator(request.user):
            kwargs["choices"] = _TENANT_ROLES
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not is_operator(request.user):
            obj.tenant_id = request.user.tenant_id
            if obj.role not in dict(_TENANT_ROLES):
                from django.core.exceptions import PermissionDenied

                raise PermissionDenied("tenant admins cannot grant the operator role")
        super().save_model(request, obj, form, change)
        if change:
            services.user_access_changed(user=obj, fields=set(form.changed_data))

    actions = ("deactivate", "revoke_tokens")

    @admin.action(description="Deactivate selected users (and revoke their tokens)")
    def deactivate(self, request, queryset):
        services.users_deactivate(users=queryset)

    @admin.action(description="Revoke API tokens of selected users")
    def revoke_tokens(self, request, queryset):
        services.users_tokens_revoke(users=queryset)


@admin.register(AuthToken)
class AuthTokenAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    tenant_field = "user__tenant"
    list_display = ("prefix", "user", "created_at", "expires_at", "last_used_at")
    search_fields = ("prefix", "user__username")
    exclude = ("key_hash",)
