"""Changes a person makes to a check (pause, resume), applied through the same state machine
and the same writes as the sweeper."""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now

from apps.teams.models import Team

from .models import Check, CheckDefaults
from .state import Reason, Status, StatusChanged, Step, next_deadline, pause, state_to_json
from .sweeper import Evaluated, write_effects


def _save_step(check: Check, step: Step, *, now: datetime) -> Check:
    rules = check.rules()
    was_flapping = check.state().is_flapping
    Check.objects.filter(id=check.id).update(
        status=step.state.status,
        eval_state=state_to_json(step.state),
        alert_after=next_deadline(step.state, rules, settings.CLOCK_SKEW_ALLOWANCE),
    )
    check.status, check.eval_state = step.state.status, state_to_json(step.state)
    write_effects([Evaluated(check, rules, step.state, step.effects, was_flapping)], now=now)
    return check


@transaction.atomic
def pause_check(*, check_id, now: datetime) -> Check:
    """Pause: sweeps ignore the check and its open incident is resolved as paused."""
    check = Check.objects.select_for_update().get(id=check_id)
    return _save_step(check, pause(check.state(), check.rules(), now), now=now)


@transaction.atomic
def resume_check(*, check_id, now: datetime) -> Check:
    """Resume by hand: a check that had checked in before gets a fresh deadline from now."""
    check = Check.objects.select_for_update().get(id=check_id)
    state = check.state()
    if state.status != Status.PAUSED:
        return check
    if state.last_checkin_at is None:
        resumed = replace(state, status=Status.NEW, paused_at=None)
    else:
        resumed = replace(state, status=Status.UP, paused_at=None, last_checkin_at=now)
    step = Step(resumed)
    step.effects.append(StatusChanged(Status.PAUSED, resumed.status, now, Reason.RESUMED))
    return _save_step(check, step, now=now)


@transaction.atomic
def regenerate_ping_token(*, check_id) -> Check:
    """Give the check a new random ping URL; the old one answers 404 from now on (for a URL
    that leaked). The slug URL (team ping key + slug) is unchanged."""
    check = Check.objects.select_for_update().get(id=check_id)
    check.ping_token = uuid.uuid4()
    check.save(update_fields=["ping_token"])
    return check


@transaction.atomic
def delete_check(*, check_id) -> None:
    """Delete the check with its pings, flips, runs and incidents (cascade). Notifications
    already queued for its incidents go with them."""
    Check.objects.filter(id=check_id).delete()


def refresh_deadline(*, check_id, now: datetime) -> None:
    """After a check's settings changed: make it due at `now`, so that the sweeper recomputes
    its deadline under the new rules (the ping path does the same). A check the sweeper does
    not watch (new, paused, down) stays unwatched. Safe to repeat."""
    Check.objects.filter(id=check_id, alert_after__isnull=False).update(alert_after=now)


class Provisioning(StrEnum):
    CREATED = "created"
    EXISTS = "exists"  # a concurrent ping (or a person) created it first
    NO_TEAM = "no_team"
    LIMIT_REACHED = "limit_reached"


@dataclass(frozen=True)
class ProvisioningResult:
    outcome: Provisioning
    max_checks: int = 0


def provision_check(*, ping_key: str, slug: str, now: datetime | None = None) -> ProvisioningResult:
    """Create the check `slug` in the team with `ping_key`, with the team's CheckDefaults, for
    a ping to /ping/<ping key>/<slug>?create=1.

    Returns NO_TEAM when no team has that key, LIMIT_REACHED (writing nothing but the refusal
    count on the team's defaults) when the team already has `max_checks` checks, else CREATED
    or EXISTS. Provisioning of one team is serialised on its team row, so that two pings with
    new slugs cannot both take the last place under the limit. Safe to repeat. `now` is for
    tests; otherwise the database clock stamps a refusal."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: serialises provisioning of one team, yet does not block check
        # inserts from the dashboard or the API (their foreign key takes FOR KEY SHARE).
        team = Team.objects.select_for_update(no_key=True).filter(ping_key=ping_key).first()
        if team is None:
            return ProvisioningResult(Provisioning.NO_TEAM)
        defaults = CheckDefaults.objects.filter(team=team).first() or CheckDefaults(team=team)
        checks = Check.objects.filter(team=team)
        if checks.filter(slug=slug).exists():
            return ProvisioningResult(Provisioning.EXISTS)
        if checks.count() >= defaults.max_checks:
            refused = ProvisioningResult(Provisioning.LIMIT_REACHED, defaults.max_checks)
        else:
            settings_ = defaults.check_settings()
            policy = defaults.escalation_policy
            if policy is None or policy.team_id != team.id:
                settings_["escalation_policy_id"] = None  # never another team's policy
            try:
                with transaction.atomic():
                    Check.objects.create(team=team, name=slug, slug=slug, **settings_)
            except IntegrityError:
                # Created from the dashboard or the API meanwhile (they do not take the lock).
                return ProvisioningResult(Provisioning.EXISTS)
            return ProvisioningResult(Provisioning.CREATED)
    _count_refusal(team, slug, now)
    return refused


def _count_refusal(team: Team, slug: str, now: datetime | None) -> None:
    changes = {
        "refused_pings": F("refused_pings") + 1,
        "last_refused_slug": slug,
        "last_refused_at": now or Now(),
    }
    if not CheckDefaults.objects.filter(team=team).update(**changes):
        try:
            with transaction.atomic():
                CheckDefaults.objects.create(
                    team=team, refused_pings=1, last_refused_slug=slug, last_refused_at=now or Now()
                )
        except IntegrityError:  # a concurrent refusal created the row first
            CheckDefaults.objects.filter(team=team).update(**changes)
