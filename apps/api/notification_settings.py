"""/api/tocsin/v1/notification-settings/: the team's notification grouping (one object per
team): what groups notifications into one message (`group_by`), the group wait and the group
interval, in seconds. See README "Channels, grouping and delivery" for what each does.

Validated by the dashboard's GroupingForm (the Grouping page) through form_input.py, so the
ranges are the page's: a wait of 0-3600 s, an interval of 0-86400 s. A team that never saved
its grouping reads the deployment's defaults (NOTIFICATION_GROUP_WAIT / _INTERVAL), as the
page shows them. Grouping is per team; policies have no grouping of their own."""

from django.conf import settings
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.notifications.forms import GroupingForm
from apps.notifications.models import TeamNotificationSettings

from .base import TeamApiMixin
from .errors import Conflict
from .form_input import StrictObjectSerializer, read_input, seconds_of, valid_form
from .serializers import StrictIntegerField

GROUP_BY = TeamNotificationSettings.GroupBy


class NotificationSettingsInputSerializer(StrictObjectSerializer):
    object_name = "notification settings"
    group_by = serializers.ChoiceField(
        GROUP_BY.values, help_text="team, tag (the check's first tag) or environment."
    )
    # Bounds that only keep numbers sane; the form's ranges are the rule.
    group_wait = StrictIntegerField(
        min_value=-(2**31), max_value=2**31, help_text="Seconds, 0-3600."
    )
    group_interval = StrictIntegerField(
        min_value=-(2**31), max_value=2**31, help_text="Seconds, 0-86400."
    )


class NotificationSettingsSerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(GROUP_BY.values)
    group_wait = serializers.IntegerField(help_text="Seconds.")
    group_interval = serializers.IntegerField(help_text="Seconds.")
    is_default = serializers.BooleanField(
        help_text="True while the team has never saved its own: the deployment's defaults."
    )


def team_grouping(team) -> TeamNotificationSettings:
    """The team's saved row, or an unsaved one holding the defaults (as the page does)."""
    row = TeamNotificationSettings.objects.filter(team=team).first()
    return row or TeamNotificationSettings(
        team=team,
        group_wait=settings.NOTIFICATION_GROUP_WAIT,
        group_interval=settings.NOTIFICATION_GROUP_INTERVAL,
    )


def shown(row: TeamNotificationSettings) -> dict:
    return {
        "group_by": row.group_by,
        "group_wait": seconds_of(row.group_wait),
        "group_interval": seconds_of(row.group_interval),
        "is_default": row._state.adding,
    }


class NotificationSettingsView(TeamApiMixin, APIView):
    pagination_class = None

    @extend_schema(
        summary="Read the team's notification grouping",
        responses={200: NotificationSettingsSerializer},
    )
    def get(self, request):
        return Response(NotificationSettingsSerializer(shown(team_grouping(self.team))).data)

    def _save(self, request, *, partial: bool) -> Response:
        row = team_grouping(self.team)
        changes = read_input(NotificationSettingsInputSerializer, request.data, partial=partial)
        data = {**shown(row), **changes}
        form_data = {name: str(data[name]) for name in ("group_by", "group_wait", "group_interval")}
        form = valid_form(GroupingForm, form_data, instance=row)
        try:
            with transaction.atomic():
                row = form.save()
        except IntegrityError:
            # Another request saved the team's first row meanwhile (the team is the key).
            raise Conflict("The grouping was saved by another request meanwhile.") from None
        return Response(NotificationSettingsSerializer(shown(row)).data)

    @extend_schema(
        summary="Replace the team's notification grouping",
        request=NotificationSettingsInputSerializer,
        responses={200: NotificationSettingsSerializer},
    )
    def put(self, request):
        return self._save(request, partial=False)

    @extend_schema(
        summary="Change some of the team's notification grouping",
        request=NotificationSettingsInputSerializer(partial=True),
        responses={200: NotificationSettingsSerializer},
    )
    def patch(self, request):
        return self._save(request, partial=True)
