"""/api/tocsin/v1/members/: who is on the team, read-only.

Escalation steps and rotations name people by user id ({"kind": "user", "id": 7}); without this
list a client writing policies as code could not find those ids. Membership itself is managed on
the dashboard, where an owner confirms who joins (invitations by email)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from apps.teams.models import Membership

from .base import TeamApiMixin


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user_id", help_text="The user id that steps name.")
    username = serializers.CharField(source="user.username")
    name = serializers.SerializerMethodField()
    role = serializers.ChoiceField(choices=Membership.Role.choices)
    joined_at = serializers.DateTimeField(source="created_at")

    class Meta:
        model = Membership
        fields = ["id", "username", "name", "role", "joined_at"]
        read_only_fields = fields

    def get_name(self, membership) -> str:
        return membership.user.get_full_name()


@extend_schema_view(
    list=extend_schema(summary="List the team's members (user ids for escalation targets)"),
    retrieve=extend_schema(summary="Read one member by user id"),
)
class MemberViewSet(
    TeamApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = MemberSerializer
    lookup_field = "user_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self):
        # Email addresses are left out on purpose: a read-only key feeding a wall dashboard
        # should not become a list of the team's addresses.
        return (
            Membership.objects.filter(team=self.team)
            .select_related("user")
            .order_by("user__username", "user_id")
        )
