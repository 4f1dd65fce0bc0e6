"""Session intelligence API (API.md "Session intelligence"): agent config, usage, summaries,
suggestions, canned responses."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.ai import selectors
from anmei.ai.models import AgentConfig, CannedResponse, ConversationSummary
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from anmei.ai.services.canned_responses import canned_response_create, canned_response_delete, canned_response_update
from anmei.ai.services.suggestions import KINDS, suggestions_generate
from anmei.ai.templating import template_validator
from anmei.common.api import IdField, TenantURLField, validated_input
from anmei.common.errors import ApplicationError, NotFoundError
from anmei.common.permissions import IsConsultantOrAdmin, IsTenantAdmin, IsTenantAdminOrOperator, is_operator
from anmei.conversations.models import Conversation
from anmei.conversations.selectors import conversation_get
from anmei.stats.services.rollup import tenant_zone
from anmei.tenants.models import Tenant

_PRICE = {"max_digits": 12, "decimal_places": 6, "min_value": 0}


class PricesSerializer(serializers.Serializer):
    prompt_per_1k = serializers.DecimalField(**_PRICE, coerce_to_string=True)
    completion_per_1k = serializers.DecimalField(**_PRICE, coerce_to_string=True)


class AgentConfigOutputSerializer(serializers.Serializer):
    provider = serializers.CharField()
    base_url = serializers.CharField()
    app_id = serializers.CharField()
    model = serializers.CharField()
    timeout_seconds = serializers.FloatField()
    enabled = serializers.BooleanField()
    welcome_template = serializers.CharField()
    monthly_token_quota = serializers.IntegerField()
    context_token_budget = serializers.IntegerField()
    stream = serializers.BooleanField()
    prices = PricesSerializer()
    api_key_set = serializers.BooleanField()


def _config_out(config: AgentConfig) -> dict:
    return AgentConfigOutputSerializer(
        {
            "provider": config.provider,
            "base_url": config.base_url,
            "app_id": config.app_id,
            "model": config.model,
            "timeout_seconds": config.timeout_seconds,
            "enabled": config.enabled,
            "welcome_template": config.welcome_template,
            "monthly_token_quota": config.monthly_token_quota,
            "context_token_budget": config.context_token_budget,
            "stream": config.stream,
            "prices": {
                "prompt_per_1k": config.price_prompt_per_1k,
                "completion_per_1k": config.price_completion_per_1k,
            },
            "api_key_set": bool(config.api_key_encrypted),
        }
    ).data


class AgentConfigApi(APIView):
    """The tenant's agent, effective on the next call. `api_key` is write-only (send "" to clear it)."""

    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        provider = serializers.ChoiceField(choices=AgentConfig.Provider.values, required=False)
        base_url = TenantURLField(required=False, allow_blank=True, max_length=200)
        app_id = serializers.CharField(required=False, allow_blank=True, max_length=128)
        model = serializers.CharField(required=False, allow_blank=True, max_length=128)
        timeout_seconds = serializers.FloatField(required=False, min_value=0.5, max_value=120)
        enabled = serializers.BooleanField(required=False)
        welcome_template = serializers.CharField(required=False, max_length=4000, validators=[template_validator])
        monthly_token_quota = serializers.IntegerField(required=False, min_value=0, max_value=10**15)
        context_token_budget = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
        stream = serializers.BooleanField(required=False)
        prices = PricesSerializer(required=False)
        api_key = serializers.CharField(required=False, allow_blank=True, max_length=500, write_only=True)

    @extend_schema(responses={200: AgentConfigOutputSerializer})
    def get(self, request):
        return Response(_config_out(selectors.agent_config_get(tenant_id=request.user.tenant_id)))

    @extend_schema(request=InputSerializer, responses={200: AgentConfigOutputSerializer})
    def put(self, request):
        data = dict(validated_input(self.InputSerializer, request.data))
        prices = data.pop("prices", None)
        if prices is not None:
            data["price_prompt_per_1k"] = prices["prompt_per_1k"]
            data["price_completion_per_1k"] = prices["completion_per_1k"]
        config = agent_config_get_or_create(tenant_id=request.user.tenant_id)
        config = agent_config_update(config=config, **data)
        return Response(_config_out(config))


class LlmUsageApi(APIView):
    """Metered LLM tokens and cost; tenant admins see their tenant, operators pass ?tenant=<id>."""

    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        # `from` is a Python keyword: the field is renamed in validate().
        to = serializers.DateField(required=False, help_text="last local day, included (tenant time zone)")
        group_by = serializers.ChoiceField(choices=["day", "purpose", "model"], required=False, default="day")
        tenant = IdField(required=False)

        def get_fields(self):
            fields = super().get_fields()
            fields["from"] = serializers.DateField(
                required=False, help_text="first local day (tenant time zone); default: the 1st of this month"
            )
            return fields

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "LlmUsageReport",
                {"totals": serializers.DictField(), "quota": serializers.DictField(), "rows": serializers.ListField()},
            )
        },
    )
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        if is_operator(request.user):
            tenant_id = filters.get("tenant")
            if not tenant_id:
                raise ApplicationError(
                    "tenant_required", "operators must pass ?tenant=<id>", details={"field": "tenant"}
                )
            if not Tenant.objects.filter(pk=tenant_id).exists():
                raise NotFoundError("tenant")
        else:
            tenant_id = request.user.tenant_id
        today = timezone.now().astimezone(tenant_zone(tenant_id)).date()  # the tenant's day, not UTC's
        date_to = filters.get("to") or today
        date_from = filters.get("from") or date_to.replace(day=1)
        if date_from > date_to:
            raise ApplicationError("invalid_range", "from must not be after to", details={"field": "from"})
        if date_to - date_from > timedelta(days=366):
            raise ApplicationError("invalid_range", "at most 366 days at once", details={"field": "to"})
        report = selectors.llm_usage_report(
            tenant_id=tenant_id, date_from=date_from, date_to=date_to, group_by=filters["group_by"]
        )
        return Response(report)


class SummaryOutputSerializer(serializers.Serializer):
    conversation_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConversationSummary.Status.values)
    summary = inline_serializer(
        "SummaryFields",
        {
            "main_issues": serializers.CharField(),
            "solution": serializers.CharField(),
            "evaluation": serializers.CharField(),
            "follow_up": serializers.CharField(),
        },
        allow_null=True,
    )
    model = serializers.CharField()
    created_at = serializers.DateTimeField()


class ConversationSummaryApi(APIView):
    """The stored summary of an ended conversation; 404 before it ends."""

    permission_classes = [IsConsultantOrAdmin]

    @extend_schema(responses={200: SummaryOutputSerializer})
    def get(self, request, conversation_id: int):
        conversation = conversation_get(user=request.user, conversation_id=conversation_id)
        summary = ConversationSummary.objects.filter(conversation=conversation).first()
        if summary is None:
            if conversation.status != conversation.Status.ENDED:
                raise NotFoundError("summary")
            # ended, its job not started yet: the row is stored by the job
            data = {"status": ConversationSummary.Status.PENDING, "summary": None, "model": "",
                    "created_at": conversation.ended_at or conversation.updated_at}  # fmt: skip
        else:
            data = {
                "status": summary.status,
                "summary": summary.as_dict() if summary.status == ConversationSummary.Status.READY else None,
                "model": summary.model,
                "created_at": summary.created_at,
            }
        return Response(SummaryOutputSerializer({"conversation_id": conversation.id, **data}).data)


class SuggestionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS)
    text = serializers.CharField()


class ConversationSuggestionsApi(APIView):
    """Suggestions for the newest customer message, on demand (the assigned consultant or an admin)."""

    permission_classes = [IsConsultantOrAdmin]

    @extend_schema(
        request=None,
        responses={200: inline_serializer("Suggestions", {"suggestions": SuggestionSerializer(many=True)})},
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_get(user=request.user, conversation_id=conversation_id)
        if conversation.status != Conversation.Status.ACTIVE:
            raise ApplicationError(
                "conversation_not_active",
                "suggestions are for active conversations",
                status_code=409,
                details={"status": conversation.status, "conversation_id": conversation.id},
            )
        if request.user.role != "admin" and conversation.consultant_id != request.user.id:
            raise ApplicationError(
                "not_assigned",
                "only the consultant handling this conversation gets its suggestions",
                status_code=403,
                details={"conversation_id": conversation.id},
            )
        suggestions = suggestions_generate(conversation=conversation, message=None)
        return Response({"suggestions": SuggestionSerializer(suggestions, many=True).data})


class CannedResponseSerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedResponse
        fields = ["id", "shortcode", "text", "keywords", "created_at", "updated_at"]


class _CannedInput(serializers.Serializer):
    shortcode = serializers.SlugField(max_length=64, allow_unicode=True)
    text = serializers.CharField(max_length=4000)
    keywords = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=50, required=False, default=list
    )


class CannedResponseListApi(APIView):
    """The tenant's canned responses (标准话术): its consultants and admins read and manage them."""

    permission_classes = [IsConsultantOrAdmin]

    @extend_schema(responses={200: CannedResponseSerializer(many=True)})
    def get(self, request):
        responses = selectors.canned_response_list(tenant_id=request.user.tenant_id)
        return Response(CannedResponseSerializer(responses, many=True).data)

    @extend_schema(request=_CannedInput, responses={201: CannedResponseSerializer})
    def post(self, request):
        data = validated_input(_CannedInput, request.data)
        response = canned_response_create(tenant_id=request.user.tenant_id, **data)
        return Response(CannedResponseSerializer(response).data, status=status.HTTP_201_CREATED)


class CannedResponseDetailApi(APIView):
    permission_classes = [IsConsultantOrAdmin]

    class UpdateSerializer(_CannedInput):
        shortcode = serializers.SlugField(max_length=64, allow_unicode=True, required=False)
        text = serializers.CharField(max_length=4000, required=False)
        keywords = serializers.ListField(child=serializers.CharField(max_length=64), max_length=50, required=False)

    def _get(self, request, response_id: int) -> CannedResponse:
        response = selectors.canned_response_list(tenant_id=request.user.tenant_id).filter(pk=response_id).first()
        if response is None:
            raise NotFoundError("canned response")
        return response

    @extend_schema(request=UpdateSerializer, responses={200: CannedResponseSerializer})
    def put(self, request, response_id: int):
        response = self._get(request, response_id)
        data = validated_input(self.UpdateSerializer, request.data)
        response = canned_response_update(response=response, **data)
        return Response(CannedResponseSerializer(response).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, response_id: int):
        canned_response_delete(response=self._get(request, response_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
