"""The incident timeline in words, for the incident page (and anything else that shows it)."""

from apps.teams.templatetags.times import when

from .models import Incident, IncidentEvent

Kind = IncidentEvent.Kind


def _when(value) -> str:
    """A time kept in an event's JSON, in the reader's zone like every other time."""
    return when(value)


def _who(detail: dict) -> str:
    if detail.get("via_channel"):
        return f"someone in channel {detail['via_channel']}"
    return detail.get("by") or "someone"


def _resolved(d: dict) -> str:
    if d.get("resolution") == Incident.Resolution.RECOVERED:
        return "Resolved: the check recovered"
    if d.get("resolution") == Incident.Resolution.PAUSED:
        return "Resolved: the check was paused"
    return f"Resolved by {_who(d)}"


def _escalated(d: dict) -> str:
    repeat = f", repeat {d['round']}" if d.get("round") else ""
    targets = ", ".join(d.get("targets") or []) or "nobody reachable"
    return f"Escalated to step {d.get('step')} of {d.get('steps')}{repeat}: {targets}"


def _silenced(d: dict) -> str:
    until = _when(d.get("until"))
    if d.get("silence"):
        return f"Silenced by silence #{d['silence']} (“{d.get('comment', '')}”) until {until}"
    return f"Silenced by maintenance window “{d.get('name', '')}” until {until}"


def _policy_skipped(d: dict) -> str:
    handled = ", ".join(d.get("policy_severities") or [])
    return f"Not notified: the policy handles {handled} only; this incident is {d.get('severity')}"


DESCRIBE = {
    Kind.OPENED: lambda d: (
        f"Opened: {d.get('kind', '').replace('_', ' ')}, severity {d.get('severity')}"
    ),
    Kind.SEVERITY_RAISED: lambda d: f"Severity raised from {d.get('old')} to {d.get('new')}",
    Kind.KIND_CHANGED: lambda d: (
        f"Now {d.get('new', '').replace('_', ' ')} (was {d.get('old', '').replace('_', ' ')})"
    ),
    Kind.ACKNOWLEDGED: lambda d: f"Acknowledged by {_who(d)}",
    Kind.RESOLVED: _resolved,
    Kind.NOTIFIED: lambda d: (
        f"Notified {d.get('to', '')} ({d.get('via', '')}) about {d.get('about', 'the incident')}"
    ),
    Kind.NOTIFY_FAILED: lambda d: (
        f"Notification to {d.get('to', '')} ({d.get('via', '')}) failed: {d.get('error', '')}"
    ),
    Kind.ESCALATED: _escalated,
    Kind.REMINDED: lambda d: f"Reminder {d.get('reminder')} sent",
    Kind.ESCALATE_REQUESTED: lambda d: (
        f"{_who(d).capitalize()} said “not me”: step {d.get('next_step')} notified now"
    ),
    Kind.RETRIGGERED: lambda d: (
        "Triggered again: acknowledged at "
        f"{_when(d.get('acknowledged_at'))} but still failing after the acknowledgment timeout"
    ),
    Kind.SILENCED: _silenced,
    Kind.UNSILENCED: lambda d: (
        "Silence over: notifications " + ("resume" if d.get("notified_before") else "start now")
    ),
    Kind.SUPPRESSED: lambda d: (
        f"Suppressed: caused by {d.get('parent_check')} (incident #{d.get('parent_incident')})"
    ),
    Kind.RELEASED: lambda d: (
        f"Released: {d.get('parent_check')} recovered and this check still fails"
    ),
    Kind.NOBODY_ON_CALL: lambda d: (
        f"Nobody was on call in rotation {d.get('name') or '#' + str(d.get('rotation'))}"
    ),
    Kind.POLICY_SKIPPED: _policy_skipped,
    Kind.NOTE: lambda d: f"Note by {d.get('by') or 'someone'}: {d.get('text', '')}",
}


def describe_event(event: IncidentEvent) -> str:
    describe = DESCRIBE.get(event.kind)
    if describe is None:
        return event.kind.replace("_", " ").capitalize()
    return describe(event.detail or {})
