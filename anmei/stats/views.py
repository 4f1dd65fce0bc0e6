"""The /admin/stats/ page (Chart.js, no inline script), its JSON feed and the CSV export.

Session-authenticated Django admin doors over the same selectors as the API.
"""

from __future__ import annotations

import csv
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from anmei.common.errors import ApplicationError, error_response
from anmei.common.permissions import is_operator
from anmei.stats import selectors
from anmei.stats.api import StatsFilterSerializer
from anmei.stats.services.rollup import tenant_zone

TREND_METRICS = ["conversations", "valid_conversations", "customers", "first_response_avg_s", "csat_avg"]


def _query(request) -> dict:
    """The page's filters with defaults: the last 7 local days."""
    params = {k: v for k, v in request.GET.dict().items() if v != ""}
    zone = tenant_zone(request.user.tenant_id or 0)
    today = timezone.now().astimezone(zone).date()
    params.setdefault("to", today.isoformat())
    params.setdefault("from", (today - timedelta(days=6)).isoformat())
    return params


def _resolve(request):
    params = _query(request)
    serializer = StatsFilterSerializer(data=params)
    serializer.is_valid(raise_exception=True)
    filters = serializer.validated_data
    tenant_ids, consultant_id = selectors.stats_scope(
        user=request.user, tenant=filters.get("tenant"), consultant_id=filters.get("consultant")
    )
    return filters, tenant_ids, consultant_id


def _error(exc: Exception) -> JsonResponse:
    if isinstance(exc, ApplicationError):
        return error_response(exc.status_code, exc.code, exc.message, exc.details)
    return error_response(400, "invalid_input", "invalid filters", {"fields": exc.detail})


@staff_member_required
def stats_page(request):
    params = _query(request)
    try:
        tenant_ids, _ = selectors.stats_scope(user=request.user, tenant=params.get("tenant"), consultant_id=None)
    except ApplicationError as exc:
        return _error(exc)
    choices = selectors.stats_filter_choices(tenant_ids=tenant_ids)
    return render(
        request,
        "stats/page.html",
        {
            "params": params,
            "choices": choices,
            "is_operator": is_operator(request.user),
            "rollup_minutes": max(1, round(settings.STATS_ROLLUP_INTERVAL_SECONDS / 60)),
        },
    )


@staff_member_required
def stats_data(request):
    try:
        filters, tenant_ids, consultant_id = _resolve(request)
    except (ApplicationError, ValidationError) as exc:
        return _error(exc)
    common = {
        "tenant_ids": tenant_ids,
        "day_from": filters["date_from"],
        "day_to": filters["date_to"],
        "consultant_id": consultant_id,
        "channel": filters.get("channel"),
    }
    overview = selectors.stats_overview(**common)
    trends = {
        metric: selectors.stats_timeseries(metric=metric, granularity="day", **common)["points"]
        for metric in TREND_METRICS
    }
    body = {"overview": overview, "trends": trends}
    if tenant_ids is None:
        body["tenants"] = selectors.stats_tenant_comparison(day_from=filters["date_from"], day_to=filters["date_to"])
    return JsonResponse(body)


def _cell(value) -> str:
    """Spreadsheet-safe text: a cell starting with = + - @ is prefixed so it is never a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@staff_member_required
def stats_export_csv(request):
    try:
        filters, tenant_ids, consultant_id = _resolve(request)
    except (ApplicationError, ValidationError) as exc:
        return _error(exc)
    rows = selectors.stats_daily_rows(
        tenant_ids=tenant_ids,
        day_from=filters["date_from"],
        day_to=filters["date_to"],
        consultant_id=consultant_id,
        channel=filters.get("channel"),
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"stats-{filters['date_from']}-{filters['date_to']}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")  # Excel opens UTF-8 Chinese correctly with a BOM
    writer = csv.writer(response)
    columns = list(rows[0]) if rows else ["day", "tenant_id", "consultant_id", "consultant", "channel"]
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return response
