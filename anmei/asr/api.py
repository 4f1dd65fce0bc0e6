"""Speech to text REST doors: a task's JSON (API.md, "Speech to text") and the manual retry (consultants and admins)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.asr import selectors, services
from anmei.common.api import validated_input
from anmei.common.permissions import IsConsultantOrAdmin


class AsrResultSerializer(serializers.Serializer):
    text = serializers.CharField()
    confidence = serializers.FloatField(allow_null=True)
    language = serializers.CharField()
    duration = serializers.FloatField(allow_null=True)


class AsrErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class AsrTaskOutputSerializer(serializers.Serializer):
    asr_task_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "processing", "success", "failed"])
    result = AsrResultSerializer(required=False)
    error = AsrErrorSerializer(required=False)
    audio_url = serializers.CharField(help_text="signed, expiring playback link (GET /media/<token>)")
    timestamp = serializers.DateTimeField()


class AsrTaskDetailApi(APIView):
    permission_classes = [IsConsultantOrAdmin]

    @extend_schema(responses={200: AsrTaskOutputSerializer})
    def get(self, request, asr_task_id: str):
        task = selectors.asr_task_get(user=request.user, asr_task_id=asr_task_id)
        return Response(selectors.asr_task_data(task))


class AsrTaskRetryApi(APIView):
    """Transcribe again: a failed task always, a succeeded one only with `{"force": true}`."""

    permission_classes = [IsConsultantOrAdmin]

    class InputSerializer(serializers.Serializer):
        force = serializers.BooleanField(required=False, default=False)

    @extend_schema(request=InputSerializer, responses={202: AsrTaskOutputSerializer})
    def post(self, request, asr_task_id: str):
        data = validated_input(self.InputSerializer, request.data or {})
        task = selectors.asr_task_get(user=request.user, asr_task_id=asr_task_id)
        task = services.asr_task_retry(task=task, force=data["force"])
        return Response(selectors.asr_task_data(task), status=status.HTTP_202_ACCEPTED)
