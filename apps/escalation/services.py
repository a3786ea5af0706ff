"""Changes people make to policies, rotations and maintenance windows from the pages. Incidents
already open keep their frozen policy copy, so none of this reaches an escalation under way."""

from datetime import datetime

from django.db import transaction
from django.db.models import Max

from apps.checks.models import Check

from .models import (
    EscalationPolicy,
    EscalationStep,
    MaintenanceWindow,
    Rotation,
    RotationOverride,
    Silence,
)


class StepLimitReached(Exception):
    pass


@transaction.atomic
def add_step(*, policy: EscalationPolicy, wait, targets: list[dict], severities: str, limit: int):
    policy = EscalationPolicy.objects.select_for_update().get(id=policy.id)
    if policy.steps.count() >= limit:
        raise StepLimitReached(f"A policy has at most {limit} steps.")
    last = policy.steps.aggregate(last=Max("order"))["last"]
    return EscalationStep.objects.create(
        policy=policy,
        order=0 if last is None else last + 1,
        wait=wait,
        targets=targets,
        severities=severities,
    )


class LastStepOfDefault(ValueError):
    """Removing the only step of the team's default policy would leave its checks telling
    nobody."""


@transaction.atomic
def change_step(*, step: EscalationStep, operation: str) -> None:
    """ "remove", "up" or "down"; the remaining steps are renumbered 0..n-1. Refuses
    (LastStepOfDefault) to remove the last step of the team's default policy."""
    policy = EscalationPolicy.objects.select_for_update().get(id=step.policy_id)
    steps = list(policy.steps.all())
    index = next(i for i, s in enumerate(steps) if s.id == step.id)
    if operation == "remove" and policy.is_default and len(steps) == 1:
        raise LastStepOfDefault(
            "This is the last step of the team default: its checks would notify nobody. Add "
            "another step first, or make another policy the default."
        )
    if operation == "remove":
        steps.pop(index).delete()
    elif operation == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif operation == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    for order, item in enumerate(steps):
        if item.order != order:
            item.order = order
            item.save(update_fields=["order"])


def rename_check_in_matchers(*, team_id, old_id, new_id) -> int:
    """A check moved to a new UUID (a new ping URL): silences and maintenance windows that named
    it by id name the new one. Call it in the transaction that moved the check. Returns the
    number of rows rewritten; safe to repeat."""
    old, new = str(old_id), str(new_id)
    rewritten = 0
    for model in (Silence, MaintenanceWindow):
        for row in model.objects.filter(team_id=team_id).only("id", "matchers"):
            ids = (row.matchers or {}).get("check_ids") or []
            if old in ids:
                row.matchers["check_ids"] = sorted(new if i == old else i for i in ids)
                model.objects.filter(id=row.id).update(matchers=row.matchers)
                rewritten += 1
    return rewritten


@transaction.atomic
def assign_policy(*, policy: EscalationPolicy, check_ids: list[str]) -> None:
    """Exactly the given checks of the policy's team use it; the others that did fall back to
    the team default."""
    team_checks = Check.objects.filter(team_id=policy.team_id)
    team_checks.filter(escalation_policy=policy).exclude(id__in=check_ids).update(
        escalation_policy=None
    )
    team_checks.filter(id__in=check_ids).update(escalation_policy=policy)


def add_override(*, rotation: Rotation, user_id: int, starts_at, ends_at) -> RotationOverride:
    return RotationOverride.objects.create(
        rotation=rotation, user_id=user_id, starts_at=starts_at, ends_at=ends_at
    )


def change_override(*, override: RotationOverride, user_id: int, starts_at, ends_at):
    override.user_id, override.starts_at, override.ends_at = user_id, starts_at, ends_at
    override.save(update_fields=["user", "starts_at", "ends_at"])
    return override


def create_maintenance_window(*, team, data: dict, matchers: dict, user, now: datetime):
    return MaintenanceWindow.objects.create(
        team=team,
        name=data["name"],
        cron=data["cron"],
        duration=data["duration"],
        timezone=data["timezone"],
        matchers=matchers,
        created_by=user,
        comment=data["comment"],
        created_at=now,
    )


@transaction.atomic
def replace_steps(*, policy: EscalationPolicy, steps: list[dict], limit: int) -> None:
    """Make `steps` (dicts of wait, targets and severities, as add_step takes them) the policy's
    steps, in this order: the API's nested steps. Open incidents keep their frozen copy."""
    policy = EscalationPolicy.objects.select_for_update().get(id=policy.id)
    if len(steps) > limit:
        raise StepLimitReached(f"A policy has at most {limit} steps.")
    policy.steps.all().delete()
    EscalationStep.objects.bulk_create(
        EscalationStep(policy=policy, order=order, **step) for order, step in enumerate(steps)
    )
