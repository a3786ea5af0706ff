"""/api/v1/escalation-policies/: a team's escalation policies with their ordered steps, nested.

A policy's own settings are validated by the dashboard's PolicyForm and each step by its
StepForm (through form_input.py), so the API enforces exactly the pages' rules: a unique name,
0-20 repeats, durations, at least one target per step, targets of the key's own team only. The
steps given replace the policy's steps, in order; incidents already open keep the frozen copy
of the policy they started with.

Deleting a policy that checks still use is refused (409) unless `?force=true`: an automation
that deletes a policy by mistake would otherwise quietly reroute those checks' alerts. Forced,
the checks fall back to the team's default policy, as when the dashboard deletes one."""

from django.db import IntegrityError, transaction
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.checks.models import Check
from apps.escalation import services
from apps.escalation.forms import MAX_REPEAT, MAX_STEPS, PolicyForm, StepForm
from apps.escalation.models import SEVERITY_NAMES, EscalationPolicy
from apps.escalation.policy import TargetKind

from .base import ID_PATTERN, TeamApiMixin
from .errors import Conflict
from .form_input import (
    StrictObjectSerializer,
    duration_data,
    form_errors,
    read_input,
    seconds_of,
    valid_form,
    whole_minutes,
)
from .serializers import StrictBooleanField, StrictCharField, StrictIntegerField

YEAR = 365 * 86400
MAX_TARGETS = 100


def _seconds(**kwargs):
    return StrictIntegerField(
        min_value=60,
        max_value=YEAR,
        validators=[whole_minutes],
        help_text="Seconds (a whole number of minutes).",
        **kwargs,
    )


def _severities(**kwargs):
    return serializers.ListField(
        child=serializers.ChoiceField(SEVERITY_NAMES),
        max_length=len(SEVERITY_NAMES),
        required=False,
        default=list,
        **kwargs,
    )


class TargetSerializer(StrictObjectSerializer):
    object_name = "target"
    kind = serializers.ChoiceField([kind.value for kind in TargetKind])
    id = StrictIntegerField(
        min_value=1,
        max_value=2**63 - 1,
        required=False,
        help_text="The member's user id, or the channel's or rotation's id; left out for team.",
    )

    def validate(self, attrs):
        if "id" not in attrs and attrs["kind"] != TargetKind.TEAM:
            raise serializers.ValidationError({"id": ["This field is required."]})
        return attrs


class StepSerializer(StrictObjectSerializer):
    object_name = "step"
    wait = _seconds(required=False, default=900)
    targets = serializers.ListField(child=TargetSerializer(), max_length=MAX_TARGETS)
    severities = _severities(help_text="Only for incidents of these severities; empty: all.")


class PolicyInputSerializer(StrictObjectSerializer):
    object_name = "escalation policy"
    name = StrictCharField(max_length=100)
    is_default = StrictBooleanField(required=False, default=False)
    repeat = StrictIntegerField(
        required=False, default=0, min_value=0, max_value=MAX_REPEAT, help_text="Extra rounds."
    )
    reminder_interval = _seconds(required=False, allow_null=True, default=None)
    ack_timeout = _seconds(required=False, allow_null=True, default=None)
    severities = _severities(help_text="Only incidents of these severities use it; empty: all.")
    steps = serializers.ListField(
        child=StepSerializer(), max_length=MAX_STEPS, required=False, default=list
    )


class StepsInputSerializer(serializers.Serializer):
    """The steps of a partial update, read in full: a step is never partial."""

    steps = serializers.ListField(child=StepSerializer(), max_length=MAX_STEPS)


class StepOutputSerializer(serializers.Serializer):
    order = serializers.IntegerField()
    wait = serializers.IntegerField(help_text="Seconds.")
    targets = TargetSerializer(many=True)
    severities = serializers.ListField(child=serializers.ChoiceField(SEVERITY_NAMES))


class PolicySerializer(serializers.ModelSerializer):
    reminder_interval = serializers.SerializerMethodField()
    ack_timeout = serializers.SerializerMethodField()
    severities = serializers.SerializerMethodField()
    steps = serializers.SerializerMethodField()

    class Meta:
        model = EscalationPolicy
        fields = [
            "id",
            "name",
            "is_default",
            "repeat",
            "reminder_interval",
            "ack_timeout",
            "severities",
            "steps",
            "created_at",
        ]
        read_only_fields = fields

    def get_reminder_interval(self, policy) -> int | None:
        return seconds_of(policy.reminder_interval)

    def get_ack_timeout(self, policy) -> int | None:
        return seconds_of(policy.ack_timeout)

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(SEVERITY_NAMES)))
    def get_severities(self, policy):
        return policy.severities.split()

    @extend_schema_field(StepOutputSerializer(many=True))
    def get_steps(self, policy):
        return [
            {
                "order": step.order,
                "wait": seconds_of(step.wait),
                "targets": [{"kind": t["kind"], "id": t["id"]} for t in step.targets],
                "severities": step.severities.split(),
            }
            for step in policy.steps.all()
        ]


def policy_form_data(data: dict) -> dict:
    form_data = {
        "name": data["name"],
        "repeat": str(data["repeat"]),
        "severities": list(data["severities"]),
        **duration_data("reminder_interval", data["reminder_interval"]),
        **duration_data("ack_timeout", data["ack_timeout"]),
    }
    if data["is_default"]:
        form_data["is_default"] = "on"
    return form_data


def step_form_data(step: dict, team) -> dict:
    return {
        "targets": [f"{t['kind']}:{t.get('id', team.id)}" for t in step["targets"]],
        "severities": list(step["severities"]),
        **duration_data("wait", step["wait"]),
    }


def current_settings(policy: EscalationPolicy) -> dict:
    """The policy as input, the base a partial update merges into."""
    return {
        "name": policy.name,
        "is_default": policy.is_default,
        "repeat": policy.repeat,
        "reminder_interval": seconds_of(policy.reminder_interval),
        "ack_timeout": seconds_of(policy.ack_timeout),
        "severities": policy.severities.split(),
    }


def validated_steps(steps: list[dict], team) -> list[dict]:
    """The steps as services.replace_steps takes them, each validated by the StepForm; raises
    ValidationError naming the step ("steps[1].targets")."""
    found, errors = [], {}
    for index, step in enumerate(steps):
        form = StepForm(step_form_data(step, team), team=team)
        if not form.is_valid():
            for name, messages in form_errors(form).items():
                errors[f"steps[{index}].{name}"] = messages
            continue
        found.append(
            {
                "wait": form.cleaned_data["wait"],
                "targets": form.targets_json(),
                "severities": " ".join(sorted(form.cleaned_data["severities"])),
            }
        )
    if errors:
        raise ValidationError(errors)
    return found


def save_policy(*, team, data: dict, policy: EscalationPolicy | None = None) -> EscalationPolicy:
    """Create or update a policy from validated input; `steps` (when given) replace its steps."""
    steps_after = len(data["steps"]) if "steps" in data else None
    form = valid_form(
        PolicyForm, policy_form_data(data), instance=policy, team=team, steps_after=steps_after
    )
    steps = validated_steps(data["steps"], team) if "steps" in data else None
    try:
        with transaction.atomic():
            saved = form.save()
            if steps is not None:
                services.replace_steps(policy=saved, steps=steps, limit=MAX_STEPS)
    except IntegrityError:
        # Another request took the name, or made another policy the default, meanwhile.
        raise Conflict("Another policy was saved with this name or as default meanwhile.") from None
    return saved


def checks_using(policy: EscalationPolicy):
    """The team's checks whose incidents this policy handles: those naming it and, for the
    default policy, those naming none."""
    checks = Check.objects.filter(team_id=policy.team_id, escalation_policy=policy)
    if policy.is_default:
        checks |= Check.objects.filter(team_id=policy.team_id, escalation_policy__isnull=True)
    return checks


class DeleteQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Delete even when checks use the policy (they fall back to the team default).",
    )


@extend_schema_view(
    list=extend_schema(summary="List the team's escalation policies with their steps"),
    retrieve=extend_schema(summary="Read an escalation policy with its steps"),
)
class EscalationPolicyViewSet(
    TeamApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = PolicySerializer
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        return (
            EscalationPolicy.objects.filter(team=self.team)
            .prefetch_related("steps")
            .order_by("name", "id")
        )

    def _answer(self, policy, code=status.HTTP_200_OK) -> Response:
        return Response(PolicySerializer(self.get_queryset().get(id=policy.id)).data, status=code)

    @extend_schema(
        summary="Create an escalation policy with its steps",
        request=PolicyInputSerializer,
        responses={201: PolicySerializer},
    )
    def create(self, request):
        data = read_input(PolicyInputSerializer, request.data)
        return self._answer(save_policy(team=self.team, data=data), status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace an escalation policy and its steps (what is left out is reset)",
        request=PolicyInputSerializer,
        responses={200: PolicySerializer},
    )
    def update(self, request, pk=None):
        policy = self.get_object()
        data = read_input(PolicyInputSerializer, request.data)
        return self._answer(save_policy(team=self.team, data=data, policy=policy))

    @extend_schema(
        summary="Change some of a policy's settings; steps, when given, replace its steps",
        request=PolicyInputSerializer(partial=True),
        responses={200: PolicySerializer},
    )
    def partial_update(self, request, pk=None):
        policy = self.get_object()
        changes = read_input(PolicyInputSerializer, request.data, partial=True)
        if "steps" in request.data:
            steps = read_input(StepsInputSerializer, {"steps": request.data["steps"]})["steps"]
            changes["steps"] = steps
        data = {**current_settings(policy), **changes}
        return self._answer(save_policy(team=self.team, data=data, policy=policy))

    @extend_schema(
        summary="Delete an escalation policy (409 while checks use it, unless force=true)",
        parameters=[DeleteQuerySerializer],
        request=None,
        responses={204: None},
    )
    def destroy(self, request, pk=None):
        policy = self.get_object()
        query = DeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        in_use = checks_using(policy).count()
        if in_use and not query.validated_data["force"]:
            raise Conflict(
                f"{in_use} check(s) use this policy; assign them another policy first, or "
                "delete with ?force=true to let them fall back to the team default."
            )
        policy.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
