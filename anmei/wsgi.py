"""The HTTP application: Django (WSGI) with the admin's static files.

Production serves it with gunicorn's threaded workers (docker-compose `web`); the ASGI entry point
(anmei/asgi.py) serves the same application for HTTP next to the WebSocket routes.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = StaticFilesHandler(get_wsgi_application())
