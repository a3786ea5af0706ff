"""/api/tocsin/v1/rotations/: a team's on-call rotations, their overrides, and who is on call.

A rotation's settings are validated by the dashboard's RotationForm and an override by its
OverrideForm (through form_input.py), so the API enforces exactly the pages' rules: a unique
name, a real timezone, members of the key's own team only (at most 50, in shift order), an
override's end after its start. The API names members by user id (as escalation steps do, and
as /members/ lists them), as the form's ordered member list does; an id that is not a member
of the team is refused with the id named.

Deleting a rotation that escalation steps still notify is refused (409) unless `?force=true`,
as for channels: a step whose rotation is gone reaches nobody."""

from datetime import UTC, datetime, time

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.forms import ValidationError as FormValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from apps.clock import database_now
from apps.escalation import services
from apps.escalation.forms import (
    MAX_ROTATION_MEMBERS,
    OverrideForm,
    RotationForm,
    member_choices,
    parse_utc,
)
from apps.escalation.models import EscalationStep, Rotation, RotationOverride
from apps.escalation.rotation import Cadence, covering_override, handoffs, on_call

from .base import ID_PATTERN, TeamApiMixin
from .errors import Conflict
from .form_input import StrictObjectSerializer, read_input, valid_form
from .policies import DeleteQuerySerializer
from .serializers import StrictCharField, StrictIntegerField

BIGINT = 2**63 - 1
HANDOFF_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"
NEXT_HANDOFFS = 5


class RotationInputSerializer(StrictObjectSerializer):
    object_name = "rotation"
    name = StrictCharField(max_length=100)
    timezone = StrictCharField(
        max_length=64, required=False, default="UTC", help_text="e.g. Europe/Riga."
    )
    cadence = serializers.ChoiceField(
        [c.value for c in Cadence],
        required=False,
        default=Cadence.WEEKLY.value,
        help_text="How often the next member takes over.",
    )
    # A wall-clock time without an offset (the rotation's timezone gives it one), which
    # OpenAPI's "time" format, an RFC 3339 time with an offset, cannot say.
    handoff_time = serializers.RegexField(
        HANDOFF_TIME,
        max_length=8,
        help_text="Local time (in the timezone) when the next member takes over: HH:MM[:SS].",
    )
    start_date = serializers.DateField(
        help_text="The first shift starts at the handoff time on this local date."
    )
    members = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=BIGINT),
        max_length=MAX_ROTATION_MEMBERS,
        help_text="User ids of team members, in the order they take their shifts.",
    )


class OverrideInputSerializer(StrictObjectSerializer):
    object_name = "override"
    user_id = StrictIntegerField(
        min_value=1, max_value=BIGINT, help_text="The member who is on call instead."
    )
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class OnCallQuerySerializer(serializers.Serializer):
    at = serializers.CharField(
        required=False,
        max_length=40,
        help_text="An ISO 8601 time (UTC when it names no offset); default: now.",
    )


class OverrideSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField()

    class Meta:
        model = RotationOverride
        fields = ["id", "user_id", "starts_at", "ends_at", "created_at"]
        read_only_fields = fields


def wall_clock(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


class RotationSerializer(serializers.ModelSerializer):
    handoff_time = serializers.SerializerMethodField()
    members = serializers.SerializerMethodField()

    class Meta:
        model = Rotation
        fields = [
            "id",
            "name",
            "timezone",
            "cadence",
            "handoff_time",
            "start_date",
            "members",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.RegexField(HANDOFF_TIME))
    def get_handoff_time(self, rotation):
        """Local time in the rotation's timezone, HH:MM (HH:MM:SS when it has seconds)."""
        return wall_clock(rotation.handoff_time)

    def get_members(self, rotation) -> list[int]:
        """User ids, in shift order."""
        return [member.user_id for member in rotation.members.all()]


class HandoffSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    user_id = serializers.IntegerField()


class OnCallSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    user_id = serializers.IntegerField(
        allow_null=True, help_text="Null when the rotation has not started or has no members."
    )
    username = serializers.CharField(allow_null=True)
    override = OverrideSerializer(
        allow_null=True, help_text="The override that puts this member on call, if one does."
    )
    next_handoffs = HandoffSerializer(many=True, help_text="The scheduled handoffs after `at`.")


def rotation_form_data(data: dict, team) -> dict:
    """RotationForm data for API input (members: user ids in shift order, as the page posts)."""
    usernames = {int(user_id): name for user_id, name in member_choices(team)}
    unknown = [user_id for user_id in data["members"] if user_id not in usernames]
    if unknown:
        raise ValidationError({"members": [f"User {unknown[0]} is not a member of this team."]})
    return {
        "name": data["name"],
        "timezone": data["timezone"],
        "cadence": data["cadence"],
        "handoff_time": data["handoff_time"],
        "start_date": data["start_date"].isoformat(),
        "members": [str(user_id) for user_id in data["members"]],
    }


def current_settings(rotation: Rotation) -> dict:
    """The rotation as input, the base a partial update merges into."""
    return {
        "name": rotation.name,
        "timezone": rotation.timezone,
        "cadence": rotation.cadence,
        "handoff_time": wall_clock(rotation.handoff_time),
        "start_date": rotation.start_date,
        "members": [member.user_id for member in rotation.members.all()],
    }


def save_rotation(*, team, data: dict, rotation: Rotation | None = None) -> Rotation:
    form = valid_form(RotationForm, rotation_form_data(data, team), team=team, instance=rotation)
    try:
        with transaction.atomic():
            return form.save()
    except IntegrityError:
        raise Conflict("Another rotation was saved with this name meanwhile.") from None


def valid_override(request, rotation: Rotation) -> dict:
    """The override in the request, validated by the dashboard's OverrideForm: user_id,
    starts_at and ends_at as the services take them."""
    data = read_input(OverrideInputSerializer, request.data)
    form = valid_form(
        OverrideForm, override_form_data(data), team=rotation.team, renames={"user": "user_id"}
    )
    cleaned = form.cleaned_data
    return {
        "user_id": cleaned["user"],
        "starts_at": cleaned["starts_at"],
        "ends_at": cleaned["ends_at"],
    }


def override_form_data(data: dict) -> dict:
    return {
        "user": str(data["user_id"]),
        "starts_at": data["starts_at"].astimezone(UTC).isoformat(),
        "ends_at": data["ends_at"].astimezone(UTC).isoformat(),
    }


def steps_naming(rotation: Rotation) -> list[EscalationStep]:
    steps = EscalationStep.objects.filter(policy__team_id=rotation.team_id).select_related("policy")
    return [
        step
        for step in steps
        if any(t.get("kind") == "rotation" and t.get("id") == rotation.id for t in step.targets)
    ]


def moment_asked(query_params) -> datetime:
    """`?at=` read as the dashboard reads times (ISO 8601, UTC without an offset, years
    2000-9000), or the database's now."""
    query = OnCallQuerySerializer(data=query_params)
    query.is_valid(raise_exception=True)
    text = query.validated_data.get("at")
    if not text:
        return database_now()
    try:
        return parse_utc(text, "at")
    except FormValidationError as exc:
        raise ValidationError({"at": exc.messages}) from None


def _username(user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = get_user_model().objects.filter(id=user_id).first()
    return user.get_username() if user else None


OVERRIDE_ID = rf"(?P<override_id>{ID_PATTERN})"


@extend_schema_view(
    list=extend_schema(summary="List the team's on-call rotations"),
    retrieve=extend_schema(summary="Read a rotation"),
)
class RotationViewSet(
    TeamApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = RotationSerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return (
            Rotation.objects.filter(team=self.team)
            .prefetch_related("members")
            .order_by("name", "id")
        )

    def _answer(self, rotation, code=status.HTTP_200_OK) -> Response:
        rotation = self.get_queryset().get(id=rotation.id)
        return Response(RotationSerializer(rotation).data, status=code)

    @extend_schema(
        summary="Create a rotation",
        request=RotationInputSerializer,
        responses={201: RotationSerializer},
    )
    def create(self, request):
        data = read_input(RotationInputSerializer, request.data)
        return self._answer(save_rotation(team=self.team, data=data), status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace a rotation's settings and members (what is left out is reset)",
        request=RotationInputSerializer,
        responses={200: RotationSerializer},
    )
    def update(self, request, pk=None):
        rotation = self.get_object()
        data = read_input(RotationInputSerializer, request.data)
        return self._answer(save_rotation(team=self.team, data=data, rotation=rotation))

    @extend_schema(
        summary="Change some of a rotation's settings; members, when given, replace them",
        request=RotationInputSerializer(partial=True),
        responses={200: RotationSerializer},
    )
    def partial_update(self, request, pk=None):
        rotation = self.get_object()
        changes = read_input(RotationInputSerializer, request.data, partial=True)
        data = {**current_settings(rotation), **changes}
        return self._answer(save_rotation(team=self.team, data=data, rotation=rotation))

    @extend_schema(
        summary="Delete a rotation (409 while escalation steps notify it, unless force=true)",
        parameters=[DeleteQuerySerializer],
        request=None,
        responses={204: None},
    )
    def destroy(self, request, pk=None):
        rotation = self.get_object()
        query = DeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        steps = steps_naming(rotation)
        if steps and not query.validated_data["force"]:
            names = sorted({step.policy.name for step in steps})
            raise Conflict(
                f"Escalation policies notify this rotation ({', '.join(names)[:300]}); change "
                "them first, or delete with ?force=true."
            )
        rotation.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Who is on call, now or at a given time, and the next handoffs",
        parameters=[OnCallQuerySerializer],
        responses={200: OnCallSerializer},
    )
    @action(detail=True, methods=["get"], url_path="on-call", pagination_class=None)
    def who_is_on_call(self, request, pk=None):
        rotation = self.get_object()
        at = moment_asked(request.query_params)
        spec = rotation.spec()
        user_id = on_call(spec, at)
        covering = covering_override(spec, at)
        override = None
        if covering is not None:
            # The spec carries the override's facts, not its row: find the row to show its id.
            override = (
                rotation.overrides.filter(
                    user_id=covering.member,
                    starts_at=covering.starts_at,
                    ends_at=covering.ends_at,
                )
                .order_by("-id")
                .first()
            )
        answer = {
            "at": at,
            "user_id": user_id,
            "username": _username(user_id),
            "override": OverrideSerializer(override).data if override else None,
            "next_handoffs": [
                {"at": moment, "user_id": member}
                for moment, member in handoffs(spec, at, NEXT_HANDOFFS)
            ],
        }
        return Response(OnCallSerializer(answer).data)

    # --- overrides, nested under their rotation -------------------------------------------

    @extend_schema(
        methods=["get"],
        summary="A rotation's overrides, by start",
        responses=OverrideSerializer(many=True),
    )
    @extend_schema(
        methods=["post"],
        summary="Add an override: a member on call from starts_at to ends_at",
        request=OverrideInputSerializer,
        responses={201: OverrideSerializer},
    )
    @action(detail=True, methods=["get", "post"], serializer_class=OverrideSerializer)
    def overrides(self, request, pk=None):
        rotation = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(rotation.overrides.order_by("starts_at", "id"))
            return self.get_paginated_response(OverrideSerializer(page, many=True).data)
        override = services.add_override(rotation=rotation, **valid_override(request, rotation))
        return Response(OverrideSerializer(override).data, status=status.HTTP_201_CREATED)

    def _override(self, rotation, override_id) -> RotationOverride:
        override = rotation.overrides.filter(id=override_id).first()
        if override is None:
            raise NotFound("No such override in this rotation.")
        return override

    @extend_schema(
        methods=["get"],
        summary="Read an override",
        responses=OverrideSerializer,
        parameters=[OpenApiParameter("override_id", int, OpenApiParameter.PATH)],
    )
    @extend_schema(
        methods=["put"],
        summary="Replace an override's member and times",
        request=OverrideInputSerializer,
        responses={200: OverrideSerializer},
        parameters=[OpenApiParameter("override_id", int, OpenApiParameter.PATH)],
    )
    @extend_schema(
        methods=["delete"],
        summary="Delete an override",
        request=None,
        responses={204: None},
        parameters=[OpenApiParameter("override_id", int, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["get", "put", "delete"],
        url_path=f"overrides/{OVERRIDE_ID}",
        serializer_class=OverrideSerializer,
    )
    def override(self, request, pk=None, override_id=None):
        rotation = self.get_object()
        override = self._override(rotation, override_id)
        if request.method == "DELETE":
            override.delete()
            return Response(status=status.HTTP_204_NO_CONTENT)
        if request.method == "PUT":
            override = services.change_override(
                override=override, **valid_override(request, rotation)
            )
        return Response(OverrideSerializer(override).data)
