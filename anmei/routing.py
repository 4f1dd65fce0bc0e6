from django.urls import path

from anmei.console.consumers import ConsoleConsumer, CustomerConsumer

websocket_urlpatterns = [
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/customer/", CustomerConsumer.as_asgi()),
]
