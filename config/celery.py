"""The Celery app, configured from Django settings (namespace CELERY_)."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# "filesystem://" (the embedded broker) means kombu's transport with atomic writes: kombu's own
# lets a worker read a half-written message and die (see config/filesystem_broker.py).
TRANSPORT_ALIASES["filesystem"] = "config.filesystem_broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tocsin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
