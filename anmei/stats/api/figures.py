"""Overview and timeseries of the rollups (API.md "Statistics"; docs/metrics.md)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import IdField, validated_input
from anmei.stats import selectors

MAX_DAYS = 366
MAX_HOUR_DAYS = 31


class StatsFilterSerializer(serializers.Serializer):
    """`from`/`to` are local days (the tenant's time zone), both included."""

    date_from = serializers.DateField()
    date_to = serializers.DateField()
    consultant = IdField(required=False)
    channel = serializers.CharField(required=False, max_length=32)
    tenant = serializers.CharField(required=False, max_length=50)

    def to_internal_value(self, data):
        data = {**data}
        for name in ("from", "to"):
            if name in data:
                data[f"date_{name}"] = data.pop(name)
        return super().to_internal_value(data)

    def validate(self, attrs):
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"from": ["from must not be after to"]})
        if (attrs["date_to"] - attrs["date_from"]).days >= MAX_DAYS:
            raise serializers.ValidationError({"to": [f"at most {MAX_DAYS} days"]})
        return attrs


FILTER_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, required=True, description="first local day (tenant time zone)"),
    OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="last local day, included (tenant time zone)"),
    OpenApiParameter("consultant", OpenApiTypes.INT, description="a consultant's id (consultants: only their own)"),
    OpenApiParameter("channel", OpenApiTypes.STR, description="web, or an IM platform"),
    OpenApiParameter("tenant", OpenApiTypes.STR, description="operators: a tenant id or slug (none: all tenants)"),
]


def _filters(serializer_class, request) -> tuple[dict, list[int] | None, int | None]:
    filters = validated_input(serializer_class, request.query_params.dict())
    tenant_ids, consultant_id = selectors.stats_scope(
        user=request.user, tenant=filters.get("tenant"), consultant_id=filters.get("consultant")
    )
    return filters, tenant_ids, consultant_id


def _seconds(**kwargs):
    return serializers.FloatField(allow_null=True, **kwargs)


class OverviewCustomers(serializers.Serializer):
    total = serializers.IntegerField()
    new = serializers.IntegerField()
    returning = serializers.IntegerField()


class OverviewConversations(serializers.Serializer):
    total = serializers.IntegerField()
    valid = serializers.IntegerField()
    bot_only = serializers.IntegerField()
    transferred_to_human = serializers.IntegerField()
    avg_duration_s = _seconds()


class OverviewFirstResponse(serializers.Serializer):
    avg_s = _seconds()
    p50_s = _seconds()
    p90_s = _seconds()


class OverviewHandleTime(serializers.Serializer):
    avg_s = _seconds()
    p50_s = _seconds()


class OverviewConsultant(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    conversations = serializers.IntegerField()
    first_response_avg_s = _seconds()
    handle_time_avg_s = _seconds()
    csat_avg = serializers.FloatField(allow_null=True)


class OverviewKeywordHit(serializers.Serializer):
    keyword = serializers.CharField()
    count = serializers.IntegerField()


class OverviewBot(serializers.Serializer):
    auto_replies = serializers.IntegerField()
    transfers = serializers.IntegerField()
    keyword_hits = OverviewKeywordHit(many=True)


class OverviewWord(serializers.Serializer):
    word = serializers.CharField()
    count = serializers.IntegerField()


class OverviewQuestion(serializers.Serializer):
    question = serializers.CharField()
    count = serializers.IntegerField()


class OverviewHour(serializers.Serializer):
    hour = serializers.IntegerField(min_value=0, max_value=23)
    count = serializers.IntegerField()


class OverviewChannel(serializers.Serializer):
    channel = serializers.CharField()
    count = serializers.IntegerField()


class OverviewCsat(serializers.Serializer):
    avg = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class OverviewReplyTime(serializers.Serializer):
    avg_s = _seconds()
    count = serializers.IntegerField()


class OverviewSessionDuration(serializers.Serializer):
    ended = serializers.IntegerField()
    bot_avg_s = _seconds()
    human_avg_s = _seconds()


class OverviewClaimTime(serializers.Serializer):
    avg_s = _seconds()
    new_customer_avg_s = _seconds()


class OverviewRegistration(serializers.Serializer):
    registered = serializers.IntegerField(allow_null=True, help_text="null under a consultant or channel filter")
    converted = serializers.IntegerField(allow_null=True)
    rate = serializers.FloatField(allow_null=True)


class OverviewHeatCell(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday")
    hour = serializers.IntegerField(min_value=0, max_value=23)
    count = serializers.IntegerField()


class OverviewBusinessPart(serializers.Serializer):
    conversations = serializers.IntegerField()
    first_response_avg_s = _seconds()


class OverviewBusinessHours(serializers.Serializer):
    # `in` is a Python keyword: declared through get_fields
    def get_fields(self):
        return {"in": OverviewBusinessPart(), "out": OverviewBusinessPart()}


class OverviewTenantRow(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    conversations = serializers.IntegerField()
    customer_messages = serializers.IntegerField()
    first_response_avg_s = _seconds()
    csat_avg = serializers.FloatField(allow_null=True)


class StatsOverviewSerializer(serializers.Serializer):
    """API.md "Statistics" overview, then the further figures of docs/metrics.md."""

    customers = OverviewCustomers()
    conversations = OverviewConversations()
    one_time_resolution_rate = serializers.FloatField(allow_null=True)
    first_response = OverviewFirstResponse()
    handle_time = OverviewHandleTime()
    consultants = OverviewConsultant(many=True)
    bot = OverviewBot()
    hot_words = OverviewWord(many=True)
    busy_hours = OverviewHour(many=True)
    channels = OverviewChannel(many=True)
    csat = OverviewCsat()
    as_of = serializers.DateTimeField(allow_null=True, help_text="end of the last rolled window")
    hot_questions = OverviewQuestion(many=True)
    reply_time = OverviewReplyTime()
    session_duration = OverviewSessionDuration()
    claim_time = OverviewClaimTime()
    transfers_between_consultants = serializers.IntegerField()
    registration_conversion = OverviewRegistration()
    busy_heatmap = OverviewHeatCell(many=True)
    business_hours = OverviewBusinessHours(allow_null=True)
    tenants = OverviewTenantRow(many=True, required=False, help_text="operators without `tenant=`: one row per tenant")


class StatsOverviewApi(APIView):
    """Headline figures of a period from the rollups (API.md "Statistics"; docs/metrics.md)."""

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: StatsOverviewSerializer})
    def get(self, request):
        filters, tenant_ids, consultant_id = _filters(StatsFilterSerializer, request)
        data = selectors.stats_overview(
            tenant_ids=tenant_ids,
            day_from=filters["date_from"],
            day_to=filters["date_to"],
            consultant_id=consultant_id,
            channel=filters.get("channel"),
        )
        if tenant_ids is None:  # an operator comparing tenants
            data["tenants"] = selectors.stats_tenant_comparison(
                day_from=filters["date_from"], day_to=filters["date_to"]
            )
        return Response(data)


class StatsTimeseriesApi(APIView):
    class FilterSerializer(StatsFilterSerializer):
        metric = serializers.ChoiceField(choices=sorted(selectors.TIMESERIES_METRICS))
        granularity = serializers.ChoiceField(choices=["hour", "day"])

        def validate(self, attrs):
            attrs = super().validate(attrs)
            if attrs["granularity"] == "hour" and (attrs["date_to"] - attrs["date_from"]).days >= MAX_HOUR_DAYS:
                raise serializers.ValidationError(
                    {"granularity": [f"hourly series cover at most {MAX_HOUR_DAYS} days"]}
                )
            if attrs["granularity"] == "hour" and attrs["metric"] == "customers":
                raise serializers.ValidationError({"metric": ["distinct customers are counted per day"]})
            return attrs

    @extend_schema(
        parameters=[
            OpenApiParameter("metric", OpenApiTypes.STR, required=True, enum=sorted(selectors.TIMESERIES_METRICS)),
            OpenApiParameter("granularity", OpenApiTypes.STR, required=True, enum=["hour", "day"]),
            *FILTER_PARAMETERS,
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        filters, tenant_ids, consultant_id = _filters(self.FilterSerializer, request)
        return Response(
            selectors.stats_timeseries(
                tenant_ids=tenant_ids,
                metric=filters["metric"],
                granularity=filters["granularity"],
                day_from=filters["date_from"],
                day_to=filters["date_to"],
                consultant_id=consultant_id,
                channel=filters.get("channel"),
            )
        )
