"""WSGI entry point: Django behind the ping fast path (apps/checks/ping_wsgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from apps.checks.ping_wsgi import PingFastPath  # noqa: E402  (needs Django set up first)

application = PingFastPath(django_application)
