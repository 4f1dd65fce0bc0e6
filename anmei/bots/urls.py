from django.urls import path

from anmei.bots import api

# Included at /api/v1/ with an empty prefix: full paths here.
urlpatterns = [
    path("bots", api.BotListCreateApi.as_view(), name="bot-list"),
    path("bots/<id:bot_id>/rotate", api.BotRotateApi.as_view(), name="bot-rotate"),
    path("admin/bot-gateway", api.GatewaySettingsApi.as_view(), name="bot-gateway"),
    path(
        "messages/<id:message_id>/retry-delivery", api.MessageRetryDeliveryApi.as_view(), name="message-retry-delivery"
    ),
    path("bot/messages", api.BotMessageApi.as_view(), name="bot-messages"),
    path("bot/events", api.BotEventApi.as_view(), name="bot-events"),
    path("bot/heartbeat", api.BotHeartbeatApi.as_view(), name="bot-heartbeat"),
    path("bot/config", api.BotConfigApi.as_view(), name="bot-config"),
    path("bot/blacklist", api.BotBlacklistApi.as_view(), name="bot-blacklist"),
]
