"""/api/v1/silences/ and /api/v1/maintenance-windows/: what keeps a team's alerts quiet.

Input is validated by the dashboard's SilenceForm and MaintenanceWindowForm (through
form_input.py) and saved by the same domain functions as the pages: actions.create_silence,
actions.expire_silence and services.create_maintenance_window. An API key is not a person, so
objects it creates have no `created_by` (null in the answers)."""

from datetime import UTC, datetime

from django.core.validators import RegexValidator
from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.checks.models import Check
from apps.clock import database_now
from apps.escalation import actions, services
from apps.escalation.forms import LONGEST_SILENCE, MaintenanceWindowForm, SilenceForm
from apps.escalation.holds import check_facts
from apps.escalation.models import (
    MaintenanceWindow,
    Silence,
    matchers_from_json,
    matchers_to_json,
)

from .base import ID_PATTERN, TeamApiMixin
from .errors import Conflict
from .form_input import (
    StrictObjectSerializer,
    duration_data,
    read_input,
    seconds_of,
    valid_form,
    whole_minutes,
)
from .serializers import StrictBooleanField, StrictCharField, StrictIntegerField

# Far enough from datetime's limits that adding a duration can never overflow.
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
_TAG = RegexValidator(r"^[^\s,]+\Z", "A tag has no spaces or commas.")
MATCHER_FIELDS = {
    "checks": "matchers.check_ids",
    "tags": "matchers.tags",
    "environment": "matchers.environment",
    "whole_team": "matchers.whole_team",
}


def within_range(value: datetime | None) -> None:
    if value is not None and not EARLIEST <= value < LATEST:
        raise serializers.ValidationError("Must be between the years 2000 and 9000.")


class MatchersSerializer(StrictObjectSerializer):
    """What a silence or window covers. Matchers that are set narrow each other; whole_team
    covers every check of the team."""

    object_name = "matchers"
    check_ids = serializers.ListField(
        child=serializers.UUIDField(), max_length=500, required=False, default=list
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=50, validators=[_TAG]),
        max_length=50,
        required=False,
        default=list,
        help_text="Any of these tags.",
    )
    environment = StrictCharField(max_length=50, allow_blank=True, required=False, default="")
    whole_team = StrictBooleanField(required=False, default=False)


def matchers_form_data(matchers: dict) -> dict:
    data = {
        "checks": [str(check_id) for check_id in matchers["check_ids"]],
        "tags": " ".join(matchers["tags"]),
        "environment": matchers["environment"],
    }
    if matchers["whole_team"]:
        data["whole_team"] = "on"
    return data


def stored_matchers(value: dict) -> dict:
    """Stored matchers in the same shape as the input."""
    return matchers_to_json(matchers_from_json(value))


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


# --- silences ------------------------------------------------------------------------------------


class SilenceState:
    """Where a silence is at a moment (not stored: it follows from its times)."""

    ACTIVE, UPCOMING, ENDED = "active", "upcoming", "ended"
    CHOICES = (ACTIVE, UPCOMING, ENDED)


class SilenceSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()
    ends_at = serializers.DateTimeField(
        source="effective_end", help_text="When it ends: planned_end, or when it was expired."
    )
    planned_end = serializers.DateTimeField(source="ends_at")
    matchers = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    expired_by = serializers.SerializerMethodField()

    class Meta:
        model = Silence
        fields = [
            "id",
            "state",
            "starts_at",
            "ends_at",
            "planned_end",
            "expired_at",
            "expired_by",
            "matchers",
            "comment",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(SilenceState.CHOICES))
    def get_state(self, silence) -> str:
        now = self.context["now"]
        if silence.effective_end <= now:
            return SilenceState.ENDED
        return SilenceState.ACTIVE if silence.starts_at <= now else SilenceState.UPCOMING

    @extend_schema_field(MatchersSerializer)
    def get_matchers(self, silence) -> dict:
        return stored_matchers(silence.matchers)

    def get_created_by(self, silence) -> str | None:
        return _username(silence.created_by)

    def get_expired_by(self, silence) -> str | None:
        return _username(silence.expired_by)


class SilenceInputSerializer(StrictObjectSerializer):
    object_name = "silence"
    starts_at = serializers.DateTimeField(
        required=False, allow_null=True, validators=[within_range], help_text="Empty: now."
    )
    ends_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        validators=[within_range],
        help_text="Give ends_at or duration, not both.",
    )
    duration = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=60,
        max_value=int(LONGEST_SILENCE.total_seconds()),
        validators=[whole_minutes],
        help_text="Seconds (a whole number of minutes), instead of ends_at.",
    )
    matchers = MatchersSerializer()
    comment = StrictCharField(max_length=1000, help_text="Why; required.")
    confirm_no_match = StrictBooleanField(
        required=False,
        default=False,
        help_text="A silence whose matchers match no check now is refused (400) unless true.",
    )


def _utc_text(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def silence_form_data(data: dict) -> dict:
    form_data = matchers_form_data(data["matchers"])
    form_data.update(
        starts_at=_utc_text(data.get("starts_at")),
        ends_at=_utc_text(data.get("ends_at")),
        comment=data["comment"],
        **duration_data("duration", data.get("duration")),
    )
    if data.get("confirm_no_match"):
        form_data["confirm_no_match"] = "on"
    return form_data


class SilenceFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        SilenceState.CHOICES,
        required=False,
        help_text="Left out: the active and the upcoming silences.",
    )
    check_id = serializers.UUIDField(
        required=False, help_text="Only silences whose matchers cover this check."
    )


@extend_schema_view(
    list=extend_schema(
        summary="List the team's silences (by default the active and the upcoming ones)",
        parameters=[SilenceFilterSerializer],
    ),
    retrieve=extend_schema(summary="Read a silence"),
)
class SilenceViewSet(
    TeamApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = SilenceSerializer
    lookup_value_regex = ID_PATTERN

    def now(self) -> datetime:
        # One reading of the database clock per request, so that every silence in a list is
        # judged at the same moment.
        if not hasattr(self, "_now"):
            self._now = database_now()
        return self._now

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": self.now()}

    def get_queryset(self):
        silences = (
            Silence.objects.filter(team=self.team)
            .select_related("created_by", "expired_by")
            .order_by("starts_at", "id")
        )
        if self.action != "list":
            return silences
        filters = SilenceFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted, now = filters.validated_data, self.now()
        state = wanted.get("state")
        if state == SilenceState.ACTIVE:
            silences = silences.active_at(now)
        elif state == SilenceState.UPCOMING:
            silences = silences.upcoming(now)
        elif state == SilenceState.ENDED:
            ended = Q(ends_at__lte=now) | Q(expired_at__lte=now)
            silences = silences.filter(ended).order_by("-starts_at", "-id")
        else:
            silences = silences.filter(ends_at__gt=now, expired_at__isnull=True)
        if "check_id" in wanted:
            silences = silences.filter(id__in=self._covering(wanted["check_id"], silences))
        return silences

    def _covering(self, check_id, silences) -> list[int]:
        check = Check.objects.filter(team=self.team, id=check_id).first()
        if check is None:
            return []
        facts = check_facts(check)
        return [s.id for s in silences if matchers_from_json(s.matchers).matches(facts)]

    def _answer(self, silence: Silence, code=status.HTTP_200_OK) -> Response:
        silence = self.get_queryset().get(id=silence.id)
        return Response(SilenceSerializer(silence, context={"now": self.now()}).data, status=code)

    @extend_schema(
        summary="Create a silence",
        description=(
            "Validated like the dashboard's silence form: a comment is required, the matchers "
            "must name something and match a check (or confirm_no_match), the end (ends_at, or "
            "starts_at plus duration) must be in the future and at most 90 days after the "
            "start. Open incidents it covers are held at once."
        ),
        request=SilenceInputSerializer,
        responses={201: SilenceSerializer},
    )
    def create(self, request):
        data = read_input(SilenceInputSerializer, request.data)
        now = self.now()
        form = valid_form(
            SilenceForm, silence_form_data(data), renames=MATCHER_FIELDS, team=self.team, now=now
        )
        silence = actions.create_silence(
            team_id=self.team.id,
            starts_at=form.cleaned_data["starts_at"],
            ends_at=form.cleaned_data["ends_at"],
            matchers=form.matchers(),
            user=None,
            comment=form.cleaned_data["comment"],
            now=now,
        )
        return self._answer(silence, status.HTTP_201_CREATED)

    @extend_schema(
        summary="End a silence now (409 when it has already ended)",
        description="Still-open incidents it held are notified by the next sweep.",
        request=None,
        responses={200: SilenceSerializer},
    )
    @action(detail=True, methods=["post"])
    def expire(self, request, pk=None):
        silence = self.get_object()
        now = self.now()
        if silence.effective_end <= now:
            raise Conflict("This silence has already ended.")
        return self._answer(actions.expire_silence(silence=silence, user=None, now=now))


# --- maintenance windows -------------------------------------------------------------------------


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    duration = serializers.SerializerMethodField()
    matchers = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    open_until = serializers.SerializerMethodField()
    next_opens_at = serializers.SerializerMethodField()

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "name",
            "cron",
            "timezone",
            "duration",
            "matchers",
            "comment",
            "open_until",
            "next_opens_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    def get_duration(self, window) -> int:
        """Seconds."""
        return seconds_of(window.duration)

    @extend_schema_field(MatchersSerializer)
    def get_matchers(self, window) -> dict:
        return stored_matchers(window.matchers)

    def get_created_by(self, window) -> str | None:
        return _username(window.created_by)

    @extend_schema_field(
        serializers.DateTimeField(allow_null=True, help_text="Null when it is closed now.")
    )
    def get_open_until(self, window):
        opening = window.spec().window_at(self.context["now"])
        return (
            None if opening is None else serializers.DateTimeField().to_representation(opening[1])
        )

    @extend_schema_field(serializers.DateTimeField())
    def get_next_opens_at(self, window):
        start, _ = window.spec().next_windows(self.context["now"], 1)[0]
        return serializers.DateTimeField().to_representation(start)


class MaintenanceWindowInputSerializer(StrictObjectSerializer):
    object_name = "maintenance window"
    name = StrictCharField(max_length=100)
    cron = StrictCharField(max_length=100, help_text="When it opens, e.g. 0 2 * * 0.")
    timezone = StrictCharField(max_length=64, required=False, default="UTC")
    duration = StrictIntegerField(
        min_value=60,
        max_value=7 * 86400,
        validators=[whole_minutes],
        help_text="Seconds (a whole number of minutes) it stays open; at most 7 days.",
    )
    matchers = MatchersSerializer()
    comment = StrictCharField(max_length=1000)


@extend_schema_view(
    list=extend_schema(summary="List the team's maintenance windows"),
    retrieve=extend_schema(summary="Read a maintenance window"),
    destroy=extend_schema(summary="Delete a maintenance window"),
)
class MaintenanceWindowViewSet(
    TeamApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MaintenanceWindowSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return (
            MaintenanceWindow.objects.filter(team=self.team)
            .select_related("created_by")
            .order_by("name", "id")
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": database_now()}

    @extend_schema(
        summary="Create a maintenance window (a recurring silence)",
        request=MaintenanceWindowInputSerializer,
        responses={201: MaintenanceWindowSerializer},
    )
    def create(self, request):
        data = read_input(MaintenanceWindowInputSerializer, request.data)
        form_data = matchers_form_data(data["matchers"])
        form_data.update(
            name=data["name"],
            cron=data["cron"],
            timezone=data["timezone"],
            comment=data["comment"],
            **duration_data("duration", data["duration"]),
        )
        form = valid_form(MaintenanceWindowForm, form_data, renames=MATCHER_FIELDS, team=self.team)
        now = database_now()
        window = services.create_maintenance_window(
            team=self.team, data=form.cleaned_data, matchers=form.matchers(), user=None, now=now
        )
        answer = MaintenanceWindowSerializer(window, context={"now": now})
        return Response(answer.data, status=status.HTTP_201_CREATED)
