"""/api/v1/checks/: a team's checks, their pings, runs and flips, pause and resume."""

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.checks.models import Check
from apps.checks.services import pause_check, resume_check
from apps.clock import database_now

from .base import TeamApiMixin
from .check_settings import SettingsInvalid, save_check_settings
from .serializers import (
    CheckFilterSerializer,
    CheckInputSerializer,
    CheckSerializer,
    FlipSerializer,
    PingSerializer,
    RunSerializer,
    UpsertInputSerializer,
)

UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A slug as the model allows it (letters, digits, hyphens, underscores; at most 100).
SLUG_PATTERN = "[-a-zA-Z0-9_]{1,100}"


def read_settings(serializer_class, data, *, partial: bool) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def save_or_400(**kwargs) -> Check:
    try:
        return save_check_settings(**kwargs)
    except SettingsInvalid as exc:
        raise ValidationError(exc.fields) from None


def tag_filter(tag: str) -> Q:
    """Checks carrying `tag` among their space-separated tags."""
    return (
        Q(tags=tag)
        | Q(tags__startswith=f"{tag} ")
        | Q(tags__endswith=f" {tag}")
        | Q(tags__contains=f" {tag} ")
    )


@extend_schema_view(
    list=extend_schema(
        summary="List the team's checks",
        parameters=[CheckFilterSerializer],
    ),
    retrieve=extend_schema(summary="Read a check"),
    destroy=extend_schema(summary="Delete a check with its pings, runs, flips and incidents"),
)
class CheckViewSet(
    TeamApiMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CheckSerializer
    lookup_field = "id"
    lookup_value_regex = UUID_PATTERN

    def get_queryset(self):
        checks = Check.objects.filter(team=self.team).select_related("team").order_by("name", "id")
        if self.action != "list":
            return checks
        filters = CheckFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        if "tag" in wanted:
            checks = checks.filter(tag_filter(wanted["tag"]))
        if "status" in wanted:
            checks = checks.filter(status=wanted["status"])
        if "environment" in wanted:
            checks = checks.filter(environment=wanted["environment"])
        return checks

    def _answer(self, check: Check, code=status.HTTP_200_OK) -> Response:
        check = Check.objects.select_related("team").get(id=check.id)
        return Response(CheckSerializer(check).data, status=code)

    @extend_schema(
        summary="Create a check",
        request=CheckInputSerializer,
        responses={201: CheckSerializer},
    )
    def create(self, request):
        changes = read_settings(CheckInputSerializer, request.data, partial=False)
        return self._answer(save_or_400(team=self.team, changes=changes), status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace a check's settings (what is left out is reset to its default)",
        request=CheckInputSerializer,
        responses={200: CheckSerializer},
    )
    def update(self, request, id=None):
        check = self.get_object()
        changes = read_settings(CheckInputSerializer, request.data, partial=False)
        return self._answer(save_or_400(team=self.team, changes=changes, check=check, replace=True))

    @extend_schema(
        summary="Change some of a check's settings",
        request=CheckInputSerializer(partial=True),
        responses={200: CheckSerializer},
    )
    def partial_update(self, request, id=None):
        check = self.get_object()
        changes = read_settings(CheckInputSerializer, request.data, partial=True)
        return self._answer(save_or_400(team=self.team, changes=changes, check=check))

    @extend_schema(summary="Pause a check", request=None, responses={200: CheckSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, id=None):
        check = self.get_object()
        return self._answer(pause_check(check_id=check.id, now=database_now()))

    @extend_schema(
        summary="Resume a paused check (a check that is not paused is left as it is)",
        request=None,
        responses={200: CheckSerializer},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, id=None):
        check = self.get_object()
        return self._answer(resume_check(check_id=check.id, now=database_now()))

    def _page_of(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(summary="A check's pings, newest first", responses=PingSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=PingSerializer)
    def pings(self, request, id=None):
        return self._page_of(self.get_object().pings.order_by("-n"), PingSerializer)

    @extend_schema(summary="A check's runs, newest first", responses=RunSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=RunSerializer)
    def runs(self, request, id=None):
        return self._page_of(self.get_object().runs.order_by("-id"), RunSerializer)

    @extend_schema(
        summary="A check's status changes, newest first", responses=FlipSerializer(many=True)
    )
    @action(detail=True, methods=["get"], serializer_class=FlipSerializer)
    def flips(self, request, id=None):
        flips = self.get_object().flips.order_by("-happened_at", "-id")
        return self._page_of(flips, FlipSerializer)


class CheckBySlugViewSet(TeamApiMixin, viewsets.GenericViewSet):
    """Checks addressed by slug, for infrastructure as code: PUT is an idempotent upsert."""

    serializer_class = CheckSerializer
    lookup_field = "slug"
    lookup_value_regex = SLUG_PATTERN
    pagination_class = None

    def get_queryset(self):
        return Check.objects.filter(team=self.team).select_related("team")

    @extend_schema(summary="Read a check by its slug")
    def retrieve(self, request, slug=None):
        return Response(CheckSerializer(self.get_object()).data)

    @extend_schema(
        summary="Create or replace the check with this slug (idempotent)",
        description=(
            "Creates the check when the team has none with this slug (201), otherwise replaces "
            "its settings (200); settings left out take their defaults either way, so sending "
            "the same body twice leaves the same check."
        ),
        request=UpsertInputSerializer,
        responses={200: CheckSerializer, 201: CheckSerializer},
        parameters=[OpenApiParameter("slug", str, OpenApiParameter.PATH, pattern=SLUG_PATTERN)],
    )
    def update(self, request, slug=None):
        changes = dict(read_settings(UpsertInputSerializer, request.data, partial=False))
        changes["slug"] = slug
        existing = self.get_queryset().filter(slug=slug).first()
        check = save_or_400(team=self.team, changes=changes, check=existing, replace=True)
        code = status.HTTP_200_OK if existing else status.HTTP_201_CREATED
        check = Check.objects.select_related("team").get(id=check.id)
        return Response(CheckSerializer(check).data, status=code)
