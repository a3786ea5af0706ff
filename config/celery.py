"""The Celery app, configured from Django settings (namespace CELERY_)."""

import gc
import os

from celery import Celery, signals
from kombu.transport import TRANSPORT_ALIASES

# "filesystem://" (the embedded broker) means kombu's transport with atomic writes: kombu's own
# lets a worker read a half-written message and die (see config/filesystem_broker.py).
TRANSPORT_ALIASES["filesystem"] = "config.filesystem_broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tocsin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_shutdown.connect
def _skip_the_last_collection(**kwargs) -> None:
    """A worker that has stopped (tasks finished, connections closed) only has to exit, yet the
    interpreter's final garbage collection over everything Django and Celery loaded took 1 to
    1.5 s on a busy machine: most of a `dev.py run` stop, which must take under 2 s (issue 14).
    Frozen objects are left to the operating system, which reclaims the memory anyway."""
    gc.freeze()
