from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.teams.lifecycle import team_created

        from .defaults import on_team_created

        # A new team starts with a default policy that emails every member.
        team_created.connect(on_team_created, dispatch_uid="escalation-default-policy")
