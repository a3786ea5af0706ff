from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"

    def ready(self):
        # Subscribes to the checks layer's signals (apps/checks/signals.py): checks announces
        # what changed and never names this app.
        from . import receivers  # noqa: F401
