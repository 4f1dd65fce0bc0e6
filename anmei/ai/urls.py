from django.urls import path

from anmei.ai import api

urlpatterns = [
    path("admin/agent-config", api.AgentConfigApi.as_view(), name="agent-config"),
    path("admin/llm-usage", api.LlmUsageApi.as_view(), name="llm-usage"),
    path(
        "conversations/<id:conversation_id>/summary", api.ConversationSummaryApi.as_view(), name="conversation-summary"
    ),
    path(
        "conversations/<id:conversation_id>/suggestions",
        api.ConversationSuggestionsApi.as_view(),
        name="conversation-suggestions",
    ),
    path("canned-responses", api.CannedResponseListApi.as_view(), name="canned-responses"),
    path("canned-responses/<id:response_id>", api.CannedResponseDetailApi.as_view(), name="canned-response"),
]
