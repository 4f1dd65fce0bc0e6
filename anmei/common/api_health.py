from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.health import health_report


class HealthApi(APIView):
    """Platform health for monitoring: 200 when every check passes, 503 naming the failing ones."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={
            (200, "application/json"): inline_serializer(
                "Health", {"status": serializers.CharField(), "checks": serializers.DictField()}
            ),
            (503, "application/json"): inline_serializer(
                "HealthDown",
                {
                    "status": serializers.CharField(),
                    "checks": serializers.DictField(),
                    "failing": serializers.ListField(),
                },
            ),
        },
    )
    def get(self, request):
        healthy, checks = health_report()
        if healthy:
            return Response({"status": "ok", "checks": checks})
        failing = [name for name, check in checks.items() if check["status"] != "ok"]
        response = Response({"status": "unavailable", "checks": checks, "failing": failing}, status=503)
        # Expected while the platform boots (no worker answers yet): the access log line says it at
        # INFO; django.request would log every probe's 503 as an ERROR.
        response._has_been_logged = True
        return response


class LiveApi(APIView):
    """Liveness for orchestrators: the process answers; no dependency is consulted."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(auth=[], responses={200: inline_serializer("Live", {"status": serializers.CharField()})})
    def get(self, request):
        return Response({"status": "ok"})


class ReadyApi(HealthApi):
    """Readiness for orchestrators: the same checks and answer as `/health` (API.md)."""

    throttle_classes: list = []


def metrics_view(request):
    """`GET /metrics`: Prometheus exposition (bearer METRICS_TOKEN, or local callers in DEBUG)."""
    from django.http import HttpResponse
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from anmei.common.errors import error_response
    from anmei.common.metrics import metrics_allowed, registry

    if request.method != "GET":
        return error_response(405, "method_not_allowed", f'method "{request.method}" not allowed')
    if not metrics_allowed(
        authorization=request.headers.get("Authorization", ""), remote_addr=request.META.get("REMOTE_ADDR", "")
    ):
        return error_response(401, "not_authenticated", "metrics need the bearer METRICS_TOKEN")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
