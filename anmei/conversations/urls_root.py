from django.urls import path

from anmei.conversations import api

# `GET /api/v1/conversations` has no trailing slash in API.md.
urlpatterns = [path("", api.ConversationListApi.as_view(), name="conversation-list")]
