from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"

    def ready(self):
        # Subscribes to the escalation and incidents layers' signals: they announce who is owed
        # what and never name this app.
        from . import receivers  # noqa: F401
