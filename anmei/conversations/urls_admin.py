from django.urls import path

from anmei.conversations import api_routing

urlpatterns = [
    path("admin/routing", api_routing.RoutingSettingsApi.as_view(), name="routing-settings"),
]
