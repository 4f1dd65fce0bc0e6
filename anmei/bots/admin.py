"""Django admin for bots: create (credentials shown once), rotate, stale detection, run-time settings."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import F
from django.utils import timezone

from anmei.bots.models import BotDelivery, BotInstance, GatewaySettings
from anmei.bots.services import bot_create, bot_credentials_rotate
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin, TenantSettingsForm


class StaleFilter(admin.SimpleListFilter):
    title = "liveness"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("yes", "stale (no recent heartbeat)"), ("no", "alive")]

    def queryset(self, request, queryset):
        cutoff = timezone.now() - timedelta(seconds=settings.BOT_STALE_AFTER_SECONDS)
        if self.value() == "yes":
            return queryset.filter(last_heartbeat_at__isnull=True) | queryset.filter(last_heartbeat_at__lt=cutoff)
        if self.value() == "no":
            return queryset.filter(last_heartbeat_at__gte=cutoff)
        return queryset


class BotInstanceForm(TenantSettingsForm):
    """The callback URL is checked like the API's (`outbound.config_error`)."""

    public_url_fields = ("callback_url",)

    class Meta:
        model = BotInstance
        fields = "__all__"


@admin.register(BotInstance)
class BotInstanceAdmin(TenantScopedAdmin):
    form = BotInstanceForm
    list_display = (
        "id",
        "tenant",
        "name",
        "platform",
        "status",
        "config_version",
        "last_heartbeat_at",
        "stale",
        "token_prefix",
    )
    list_filter = ("platform", "status", StaleFilter, "tenant")
    search_fields = ("name", "callback_url", "token_prefix")
    readonly_fields = (
        "token_prefix",
        "config_version",
        "last_heartbeat_at",
        "last_reported_status",
        "created_at",
        "rotated_at",
    )
    actions = ("rotate_token", "rotate_secret")

    @admin.display(boolean=True, description="stale")
    def stale(self, obj):
        return obj.is_stale

    def save_model(self, request, obj, form, change):
        """New bots get credentials shown once in a message; config edits bump the config version."""
        if not change:
            bot, token, secret = bot_create(
                tenant_id=obj.tenant_id if self._is_operator(request) else request.user.tenant_id,
                name=obj.name,
                platform=obj.platform,
                callback_url=obj.callback_url,
                status=obj.status,
                away_message=obj.away_message,
                auto_reply_rules=obj.auto_reply_rules,
            )
            obj.pk, obj._state.adding = bot.pk, False
            obj.refresh_from_db()
            messages.warning(request, f"Bot token (shown once): {token} — signing secret (shown once): {secret}")
            return
        if {"away_message", "auto_reply_rules", "callback_url"} & set(form.changed_data):
            obj.config_version = F("config_version") + 1
        super().save_model(request, obj, form, change)
        obj.refresh_from_db()

    @admin.action(description="Rotate token (new token shown once)")
    def rotate_token(self, request, queryset):
        for bot in queryset:
            creds = bot_credentials_rotate(bot=bot, token=True, secret=False)
            messages.warning(request, f"{bot.name}: new token (shown once): {creds['token']}")

    @admin.action(description="Rotate signing secret (new secret shown once)")
    def rotate_secret(self, request, queryset):
        for bot in queryset:
            creds = bot_credentials_rotate(bot=bot, token=False, secret=True)
            messages.warning(request, f"{bot.name}: new signing secret (shown once): {creds['secret']}")


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(TenantScopedAdmin):
    list_display = ("tenant", "retry_countdowns", "updated_at")


@admin.register(BotDelivery)
class BotDeliveryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("id", "tenant", "message", "bot", "status", "attempts", "last_error", "created_at", "sent_at")
    list_filter = ("status", "tenant")
