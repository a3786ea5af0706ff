"""/api/v1/incidents/: a team's incidents with their timelines; acknowledge and resolve."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.clock import database_now
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import IncidentActionError, acknowledge_incident, resolve_incident

from .base import TeamApiMixin
from .errors import Conflict
from .serializers import IncidentDetailSerializer, IncidentFilterSerializer, IncidentSerializer

ACTIONS = {"acknowledge": acknowledge_incident, "resolve": resolve_incident}


@extend_schema_view(
    list=extend_schema(
        summary="List the team's incidents, newest first", parameters=[IncidentFilterSerializer]
    ),
    retrieve=extend_schema(summary="Read an incident with its timeline"),
)
class IncidentViewSet(
    TeamApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = "[0-9]{1,18}"

    def get_serializer_class(self):
        return IncidentSerializer if self.action == "list" else IncidentDetailSerializer

    def get_queryset(self):
        incidents = (
            Incident.objects.filter(owner__team=self.team)
            .select_related("owner", "acknowledged_by", "resolved_by")
            .prefetch_related(Prefetch("events", IncidentEvent.objects.order_by("at", "id")))
            .order_by("-opened_at", "-id")
        )
        if self.action != "list":
            return incidents
        filters = IncidentFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        if "state" in filters.validated_data:
            incidents = incidents.filter(state=filters.validated_data["state"])
        if "check_id" in filters.validated_data:
            incidents = incidents.filter(owner_id=filters.validated_data["check_id"])
        return incidents

    def _act(self, name: str) -> Response:
        incident = self.get_object()
        try:
            ACTIONS[name](incident_id=incident.id, user=self.request.user, now=database_now())
        except IncidentActionError as exc:
            raise Conflict(str(exc)) from None
        return Response(IncidentDetailSerializer(self.get_queryset().get(id=incident.id)).data)

    @extend_schema(
        summary="Acknowledge an incident (409 when it is already acknowledged or resolved)",
        request=None,
        responses={200: IncidentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._act("acknowledge")

    @extend_schema(
        summary="Resolve an incident by hand (409 when it is already resolved)",
        request=None,
        responses={200: IncidentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._act("resolve")
