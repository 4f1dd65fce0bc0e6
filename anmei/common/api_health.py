from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.health import CHECKS, health_report


class HealthCheckSerializer(serializers.Serializer):
    """One dependency's check: `ok` or `down` (with the error), and how long it took."""

    status = serializers.ChoiceField(choices=["ok", "down"])
    duration_ms = serializers.FloatField()
    error = serializers.CharField(required=False, help_text="only when down: the failure, named")
    count = serializers.IntegerField(required=False, help_text="workers only: how many answered")


class HealthChecksSerializer(serializers.Serializer):
    database = HealthCheckSerializer()
    redis = HealthCheckSerializer()
    broker = HealthCheckSerializer()
    workers = HealthCheckSerializer()


class HealthSerializer(serializers.Serializer):
    """API.md "Health": `{"status": "ok", "checks": {database, redis, broker, workers}}`."""

    status = serializers.ChoiceField(choices=["ok"])
    checks = HealthChecksSerializer()


class HealthDownSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["unavailable"])
    checks = HealthChecksSerializer()
    failing = serializers.ListField(child=serializers.ChoiceField(choices=list(CHECKS)), allow_empty=False)


class HealthApi(APIView):
    """Platform health for monitoring: 200 when every check passes, 503 naming the failing ones."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={
            (200, "application/json"): HealthSerializer,
            (503, "application/json"): HealthDownSerializer,
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
    uses_dependencies = False  # no 503 in its schema (anmei/common/schema.py)

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
