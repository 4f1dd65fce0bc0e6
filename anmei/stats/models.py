"""Reporting events, ratings, and the rollup tables the statistics API reads (docs/metrics.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StatsSettings(models.Model):
    """Per-tenant reporting knobs: the time zone of day/hour buckets and optional business hours."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="stats_settings")
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")
    business_hours_start = models.PositiveSmallIntegerField(null=True, blank=True, help_text="local hour, 0-23")
    business_hours_end = models.PositiveSmallIntegerField(null=True, blank=True, help_text="local hour, 1-24")
    business_days = models.CharField(max_length=16, default="01234", help_text="weekdays, 0 = Monday")
    rolled_until = models.DateTimeField(null=True, blank=True, help_text="end of the last rolled window (as_of)")

    class Meta:
        verbose_name = "统计设置"
        verbose_name_plural = "统计设置"

    def __str__(self) -> str:
        return f"stats settings of tenant {self.tenant_id}"

    def clean(self) -> None:
        """A zone the tz database knows, and business hours as a non-empty local range (0 ≤ start < end ≤ 24)."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from django.core.exceptions import ValidationError

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError({"time_zone": "unknown time zone"}) from None
        start, end = self.business_hours_start, self.business_hours_end
        if (start is None) != (end is None) or (start is not None and not 0 <= start < end <= 24):
            raise ValidationError({"business_hours_end": "set both, with 0 <= start < end <= 24"})
        if not self.business_days or any(d not in "0123456" for d in self.business_days):
            raise ValidationError({"business_days": "digits 0 (Monday) to 6 (Sunday)"})


class ReportingEvent(models.Model):
    class Kind(models.TextChoices):
        CLAIM = "claim"
        HANDOFF = "handoff"
        TRANSFER = "transfer"
        FIRST_RESPONSE = "first_response"
        REPLY = "reply"
        RESOLUTION = "resolution"
        BOT_REPLY = "bot_reply"
        RATING = "rating"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    key = models.CharField(max_length=96, help_text="idempotency key, unique per tenant")
    conversation_id = models.BigIntegerField()
    consultant_id = models.BigIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=32, blank=True)
    value_s = models.FloatField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="reporting_event_key_unique")]
        indexes = [
            models.Index(fields=["tenant", "conversation_id"], name="reporting_event_conv_idx"),
            models.Index(fields=["tenant", "kind", "occurred_at"], name="reporting_event_kind_idx"),
            models.Index(fields=["tenant", "created_at"], name="reporting_event_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.conversation_id}"


class Rating(models.Model):
    """CSAT: one score per conversation, by its customer, after it ended."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    conversation = models.OneToOneField("conversations.Conversation", on_delete=models.CASCADE, related_name="rating")
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "满意度评价"
        verbose_name_plural = "满意度评价"
        constraints = [
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5 for #{self.conversation_id}"


class _Figures(models.Model):
    """The additive counters shared by the hourly and daily rollups (sums and counts only)."""

    conversations = models.IntegerField(default=0)
    valid_conversations = models.IntegerField(default=0)
    bot_only = models.IntegerField(default=0)
    transferred = models.IntegerField(default=0)
    ended = models.IntegerField(default=0)
    resolved_once = models.IntegerField(default=0)
    duration_sum_s = models.FloatField(default=0)
    bot_time_sum_s = models.FloatField(default=0)
    human_time_sum_s = models.FloatField(default=0)
    first_response_count = models.IntegerField(default=0)
    first_response_sum_s = models.FloatField(default=0)
    handle_count = models.IntegerField(default=0)
    handle_sum_s = models.FloatField(default=0)
    claims = models.IntegerField(default=0)
    claim_sum_s = models.FloatField(default=0)
    new_customer_claims = models.IntegerField(default=0)
    new_customer_claim_sum_s = models.FloatField(default=0)
    csat_count = models.IntegerField(default=0)
    csat_sum = models.IntegerField(default=0)
    transfers = models.IntegerField(default=0)
    customer_messages = models.IntegerField(default=0)
    human_messages = models.IntegerField(default=0)
    bot_replies = models.IntegerField(default=0)
    reply_count = models.IntegerField(default=0)
    reply_sum_s = models.FloatField(default=0)

    class Meta:
        abstract = True


# Histogram buckets as plain integer columns (first_response_b00 … handle_b26): the overview sums
# them in SQL; JSON lists cost more to decode than the whole query (bench/stats.py).
HIST_BUCKETS = 27  # len(rollup.HIST_BOUNDS) + 1
for _prefix in ("first_response", "handle"):
    for _i in range(HIST_BUCKETS):
        _Figures.add_to_class(f"{_prefix}_b{_i:02d}", models.IntegerField(default=0))


class StatsHourly(_Figures):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="UTC start of the hour")
    consultant_id = models.BigIntegerField(default=0, help_text="0 = never claimed")
    channel = models.CharField(max_length=32)
    local_day = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hour", "consultant_id", "channel"], name="stats_hourly_key")
        ]
        indexes = [models.Index(fields=["tenant", "local_day"], name="stats_hourly_day_idx")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h c{self.consultant_id} {self.channel}"


class StatsDaily(_Figures):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField(help_text="local day")
    consultant_id = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=32)
    # customer_messages by local hour (cm_h00 … cm_h23): busy hours and the heat map without the hourly table

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "day", "consultant_id", "channel"], name="stats_daily_key")
        ]

    def __str__(self) -> str:
        return f"{self.day} c{self.consultant_id} {self.channel}"


for _h in range(24):
    StatsDaily.add_to_class(f"cm_h{_h:02d}", models.IntegerField(default=0))


class StatsTenantDaily(models.Model):
    """Tenant-wide figures of a local day that have no consultant/channel dimension."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    registrations = models.IntegerField(default=0)
    registrations_converted = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="stats_tenant_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} tenant {self.tenant_id}"


class StatsCustomerDay(models.Model):
    """Who wrote on a local day (distinct customers over any range), and when they first came (new vs returning)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    customer_id = models.BigIntegerField()
    consultant_id = models.BigIntegerField(default=0)
    channel = models.CharField(max_length=32)
    first_day = models.DateField(help_text="local day of the customer's first conversation (new vs returning)")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "customer_id", "consultant_id", "channel"], name="stats_customer_day_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} customer {self.customer_id}"


class StatsTermDaily(models.Model):
    class Kind(models.TextChoices):
        WORD = "word"
        QUESTION = "question"
        KEYWORD = "keyword"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    term = models.CharField(max_length=64)
    count = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day", "kind", "term"], name="stats_term_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.kind} {self.term}"
