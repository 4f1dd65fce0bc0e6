from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models, transaction
from django.db.models import Q

from anmei.common import realtime


class UserManager(DjangoUserManager):
    def get_by_natural_key(self, username):
        """Natural keys (createsuperuser, fixtures) name platform staff, who have no tenant."""
        return self.get(tenant__isnull=True, username=username)

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", User.Role.OPERATOR)
        extra_fields.setdefault("tenant", None)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person on the platform. Usernames are unique per tenant; operators have no tenant."""

    class Role(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        CONSULTANT = "consultant", "Consultant"
        ADMIN = "admin", "Tenant admin"
        OPERATOR = "operator", "Platform operator"

    username = models.CharField(max_length=150)
    tenant = models.ForeignKey("tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="users")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CUSTOMER, db_index=True)
    nickname = models.CharField(max_length=64, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    source = models.CharField(max_length=32, default="web", help_text="web, or the IM platform the user came from")
    platform_user_id = models.CharField(max_length=128, blank=True, help_text="the user's id on the IM platform")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = UserManager()

    class Meta:
        verbose_name = "用户"
        verbose_name_plural = "用户"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "username"], name="user_username_unique_per_tenant"),
            models.UniqueConstraint(
                fields=["username"], condition=Q(tenant__isnull=True), name="user_username_unique_platform"
            ),
            models.UniqueConstraint(
                fields=["tenant", "source", "platform_user_id"],
                condition=~Q(platform_user_id=""),
                name="user_platform_identity_unique",
            ),
            # An operator has no tenant and everyone else has one: a tenant account can never hold
            # the operator role, whatever wrote the row (is_operator relies on it too).
            models.CheckConstraint(
                condition=Q(role="operator", tenant__isnull=True) | (~Q(role="operator") & Q(tenant__isnull=False)),
                name="user_operator_iff_no_tenant",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "role"])]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.username}" if self.tenant_id else self.username

    @property
    def display_name(self) -> str:
        return self.nickname or self.username

    @property
    def is_operator(self) -> bool:
        """The one rule for platform-operator rights: role operator AND no tenant AND active.

        A tenant account whose role field says `operator` (however it got there) is not an operator.
        Every check goes through this (anmei.common.permissions.is_operator wraps it for requests).
        """
        return self.role == self.Role.OPERATOR and self.tenant_id is None and self.is_active

    def has_perm(self, perm, obj=None):
        # A superuser flag on a tenant account (set outside User.save) grants nothing: Django's own
        # permission shortcut must agree with is_operator.
        if self.is_superuser and not self.is_operator:
            return False
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label):
        if self.is_superuser and not self.is_operator:
            return False
        return super().has_module_perms(app_label)

    def clean(self):
        super().clean()
        from django.core.exceptions import ValidationError

        if self.role == self.Role.OPERATOR and self.tenant_id is not None:
            raise ValidationError({"role": "operators are platform accounts and belong to no tenant"})

    def save(self, *args, **kwargs):
        # Django's superuser/staff flags follow the role, never a form: only a tenant-less operator is
        # a superuser, and of tenant accounts only tenant admins reach Django admin.
        self.is_superuser = self.role == self.Role.OPERATOR and self.tenant_id is None
        self.is_staff = self.is_superuser or self.role == self.Role.ADMIN
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and ("role" in update_fields or "tenant" in update_fields):
            kwargs["update_fields"] = {*update_fields, "is_superuser", "is_staff"}
        # set_password() leaves the new raw password in _password until the save; a hash upgrade on
        # login clears it first. So this is a real password change: it revokes every bearer token and,
        # after the commit, closes the user's open sockets (4401).
        password_changed = self.pk is not None and getattr(self, "_password", None) is not None
        super().save(*args, **kwargs)
        if password_changed:
            AuthToken.objects.filter(user_id=self.pk).delete()
            tenant_id, user_id = self.tenant_id, self.pk
            transaction.on_commit(lambda: realtime.sockets_close_user(tenant_id, user_id))

    @property
    def is_staff_member(self) -> bool:
        """Consultants and admins: the people who use the console."""
        return self.role in (self.Role.CONSULTANT, self.Role.ADMIN)


class AuthToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once at login."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "登录令牌"
        verbose_name_plural = "登录令牌"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
