from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    default_auto_field = "django.db.models.BigAutoField"
