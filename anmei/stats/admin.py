"""Django admin: each tenant's reporting time zone and business hours; ratings (read only)."""

from __future__ import annotations

from django.contrib import admin

from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.stats.models import Rating, StatsSettings


@admin.register(StatsSettings)
class StatsSettingsAdmin(TenantScopedAdmin):
    list_display = (
        "tenant",
        "time_zone",
        "business_hours_start",
        "business_hours_end",
        "business_days",
        "rolled_until",
    )
    readonly_fields = ("rolled_until",)
    fields = ("tenant", "time_zone", "business_hours_start", "business_hours_end", "business_days", "rolled_until")


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("conversation", "score", "customer", "created_at")
    list_filter = ("score",)
