"""ASGI entry point: the WebSocket routes, and HTTP through the WSGI application in a thread pool.

Django's own ASGI handler runs each sync view and middleware half through asgiref's thread
hand-offs (tens per request with this middleware stack); every view here is sync (DRF), so HTTP
goes to the WSGI application on a2wsgi's thread pool instead: one hand-off per request, a
pooled database connection per thread. bench/bot_ingest.py measures the difference.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from anmei.wsgi import application as wsgi_application  # noqa: E402 - sets Django up first

http_application = WSGIMiddleware(wsgi_application, workers=settings.WEB_THREADS)

from anmei.common.wsorigin import allowed_hosts_origin_validator  # noqa: E402
from anmei.routing import websocket_urlpatterns  # noqa: E402 - the consumers import models

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": allowed_hosts_origin_validator(URLRouter(websocket_urlpatterns)),
    }
)
