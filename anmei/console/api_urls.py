from django.urls import path

from anmei.console import api

urlpatterns = [
    path("conversations/<id:conversation_id>/history", api.ConversationHistoryApi.as_view(), name="console-history"),
    path("conversations/<id:conversation_id>/events", api.ConversationTimelineApi.as_view(), name="console-events"),
    path("previews", api.ConversationPreviewApi.as_view(), name="console-previews"),
    path("customers/<id:customer_id>", api.CustomerPanelApi.as_view(), name="console-customer"),
]
