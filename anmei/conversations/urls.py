from django.urls import path

from anmei.conversations import api

urlpatterns = [
    path("messages/search", api.MessageSearchApi.as_view(), name="message-search"),
    path("<id:conversation_id>/messages", api.ConversationMessageListApi.as_view(), name="conversation-messages"),
    path("<id:conversation_id>/claim", api.ConversationClaimApi.as_view(), name="conversation-claim"),
    path("<id:conversation_id>/transfer", api.ConversationTransferApi.as_view(), name="conversation-transfer"),
    path("<id:conversation_id>/accept", api.ConversationAcceptApi.as_view(), name="conversation-accept"),
    path("<id:conversation_id>/decline", api.ConversationDeclineApi.as_view(), name="conversation-decline"),
    path("<id:conversation_id>/end", api.ConversationEndApi.as_view(), name="conversation-end"),
]
