"""Actions people take on escalation: "not me — escalate now", silencing a check from an
alert's link, creating and expiring silences. Each runs in its own transaction and hands the
incidents it touches to the engine."""

from datetime import datetime, timedelta

from django.db import transaction

from apps.incidents.models import Incident, IncidentEvent

from .engine import EscalationState, frozen_policy, reconsider, record, save_state
from .holds import matching_checks
from .models import Silence
from .policy import escalate_now


class EscalationActionError(Exception):
    """The action does not apply to the incident now; the message says why (for the page)."""


def _actor(user, via_channel: str | None) -> dict:
    if user is not None:
        return {"by": user.get_username()}
    return {"via_channel": via_channel}


def escalate_incident_now(
    *, incident_id: int, user, now: datetime, via_channel: str | None = None
) -> Incident:
    """ "Not me — escalate now": the next step fires at once."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
        if incident.state == Incident.State.RESOLVED:
            raise EscalationActionError("This incident is already resolved.")
        if incident.state == Incident.State.ACKNOWLEDGED:
            raise EscalationActionError("This incident is already acknowledged.")
        if incident.hold:
            raise EscalationActionError(
                f"Notifications for this incident are held back ({incident.get_hold_display()})."
            )
        policy = frozen_policy(incident)
        state = EscalationState.load(incident)
        moved = escalate_now(policy, state.position, now=now)
        if moved.finished or moved.due_at is None:
            raise EscalationActionError("There is no further step to escalate to.")
        state.position = moved
        incident.escalation_position = state.dump()
        record(
            incident,
            IncidentEvent.Kind.ESCALATE_REQUESTED,
            now,
            next_step=moved.step + 1,
            **_actor(user, via_channel),
        )
        reconsider(incident, now=now)
        save_state(incident)
        return incident


def silence_incident_check(
    *,
    incident_id: int,
    duration: timedelta,
    user,
    now: datetime,
    via_channel: str | None = None,
    origin: str = "an alert",
) -> Incident:
    """ "Silence this check for 1 h / 4 h / 24 h" from an alert (or the dashboard: `origin`
    words the silence's comment): a silence matching the check alone, from now; the incident is
    held until it ends."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().select_related("owner").get(id=incident_id)
        if incident.state == Incident.State.RESOLVED:
            raise EscalationActionError("This incident is already resolved.")
        hours = round(duration.total_seconds() / 3600)
        where = f" in channel {via_channel}" if via_channel else ""
        silence = create_silence(
            team_id=incident.owner.team_id,
            starts_at=now,
            ends_at=now + duration,
            matchers={"check_ids": [str(incident.owner_id)]},
            user=user,
            comment=f"Silenced for {hours} h from {origin} about incident #{incident.id}{where}.",
            now=now,
        )
        incident.refresh_from_db()
        if incident.silenced_by_id != silence.id:
            # Not held by it (acknowledged, caused by a parent, or a longer silence covers it):
            # the engine wrote nothing, yet the timeline must show what was asked for.
            record(
                incident,
                IncidentEvent.Kind.SILENCED,
                now,
                until=silence.ends_at.isoformat(),
                silence=silence.id,
                comment=silence.comment,
            )
        return incident


# --- silences ----------------------------------------------------------------------------------


def create_silence(
    *,
    team_id: int,
    starts_at: datetime,
    ends_at: datetime,
    matchers: dict,
    user,
    comment: str,
    now: datetime,
) -> Silence:
    """Save a silence and hold, at once, the open incidents it covers now (those it covers later
    are held when the sweep next looks at them)."""
    with transaction.atomic():
        silence = Silence.objects.create(
            team_id=team_id,
            starts_at=starts_at,
            ends_at=ends_at,
            matchers=matchers,
            created_by=user,
            comment=comment,
            created_at=now,
        )
        if starts_at <= now < ends_at:
            _wake_matching(team_id, matchers, now=now)
    return silence


def _wake_matching(team_id: int, matchers: dict, *, now: datetime) -> None:
    ids = [c.id for c in matching_checks(team_id, matchers)]
    incidents = (
        Incident.objects.select_for_update()
        .select_related("owner")
        .filter(owner_id__in=ids, state=Incident.State.TRIGGERED)
        .exclude(hold=Incident.Hold.SUPPRESSED)
    )
    for incident in incidents:
        reconsider(incident, now=now)
        save_state(incident)


def expire_silence(*, silence: Silence, user, now: datetime) -> Silence:
    """End a silence early. The incidents it held are looked at by the next sweep: notified
    then if still open, unacknowledged and not covered by another silence."""
    with transaction.atomic():
        updated = Silence.objects.filter(
            id=silence.id, expired_at__isnull=True, ends_at__gt=now
        ).update(expired_at=now, expired_by=user)
        if updated:
            Incident.objects.filter(silenced_by=silence, hold=Incident.Hold.SILENCED).exclude(
                state=Incident.State.RESOLVED
            ).update(next_escalation_at=now)
    silence.refresh_from_db()
    return silence
