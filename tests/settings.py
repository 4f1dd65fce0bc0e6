"""The test suite's settings: anmei.settings with DEBUG explicitly on (its default is off).

Set in the environment, not only here, so every child process a test starts (daphne, Celery
workers, beat, the MCP sidecar, manage.py) reads the same development configuration from
`anmei.settings`. A run that sets DEBUG itself keeps its value.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")
os.environ["DJANGO_SETTINGS_MODULE"] = "anmei.settings"  # what children load

from anmei.settings import *  # noqa: E402,F403
