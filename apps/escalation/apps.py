from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Subscribes to the signals of the layers below (apps/incidents/signals.py,
        # apps/teams/lifecycle.py): they announce what happened and never name this app.
        from . import receivers  # noqa: F401
