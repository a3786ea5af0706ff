"""What a message says, built once per delivery attempt from the rows it carries, and rendered
by each channel kind (apps/notifications/channels). Every kind gets the same facts: the check
(name, environment, tags), the incident (kind, severity, state), what was expected and what
happened (expected time, last ping, exit status, run duration, the end of the output, run id),
the links to the check and incident pages, and the one-click actions the recipient may use."""

from dataclasses import dataclass, field
from datetime import datetime

from apps.incidents.models import Incident
from apps.teams.display_time import email_zone_name

from .flush import HEADLINES, check_label
from .links import incident_links
from .models import Delivery, Notification

# The order in which action links are shown, with their short labels.
ACTION_LABELS = {
    "acknowledge": "Acknowledge",
    "resolve": "Resolve",
    "silence_1h": "Silence 1 h",
    "silence_4h": "Silence 4 h",
    "silence_24h": "Silence 24 h",
    "escalate": "Not me, escalate now",
}
# Actions that make sense once the incident is resolved: none.
ALERT_EVENTS_WITH_ACTIONS = {"down", "escalation", "reminder", "retriggered", "unsilenced"}


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    url: str


@dataclass(frozen=True)
class Item:
    """One incident event in a message."""

    event: str
    headline: str
    label: str  # "nightly-backup (production)"
    check_id: str
    check_name: str
    environment: str
    tags: list[str]
    incident_id: int
    incident_kind: str
    incident_kind_label: str
    state: str
    severity: str
    why: str
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str
    resolved_by: str
    acknowledged_by: str
    step: int
    round: int
    expected_at: str | None
    last_ping_at: str | None
    failed_at: str | None
    exit_status: int | None
    run_duration_seconds: float | None
    run_id: str | None
    body_tail: str
    check_url: str
    incident_url: str
    actions: list[Action] = field(default_factory=list)

    @property
    def is_alert(self) -> bool:
        return self.event in ALERT_EVENTS_WITH_ACTIONS

    @property
    def duration_text(self) -> str:
        if self.run_duration_seconds is None:
            return ""
        seconds = self.run_duration_seconds
        if seconds < 120:
            return f"{seconds:g} s"
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"

    def as_json(self) -> dict:
        return {
            "event": self.event,
            "headline": self.headline,
            "check": {
                "id": self.check_id,
                "name": self.check_name,
                "environment": self.environment,
                "tags": self.tags,
                "url": self.check_url,
            },
            "incident": {
                "id": self.incident_id,
                "kind": self.incident_kind,
                "kind_label": self.incident_kind_label,
                "state": self.state,
                "severity": self.severity,
                "why": self.why,
                "opened_at": self.opened_at.isoformat(),
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "resolution": self.resolution or None,
                "escalation_step": self.step,
                "escalation_round": self.round,
                "url": self.incident_url,
            },
            "expected_at": self.expected_at,
            "last_ping_at": self.last_ping_at,
            "failed_at": self.failed_at,
            "exit_status": self.exit_status,
            "run_duration_seconds": self.run_duration_seconds,
            "run_id": self.run_id,
            "body_tail": self.body_tail,
            "links": {
                "check": self.check_url,
                "incident": self.incident_url,
                **{action.name: action.url for action in self.actions},
            },
        }


@dataclass(frozen=True)
class Message:
    delivery_id: int | None
    team_name: str
    summary: str
    items: list[Item]
    is_test: bool = False
    # The zone an email's times are written in: the recipient's chosen zone, else UTC.
    timezone: str = "UTC"

    @property
    def title(self) -> str:
        return f"[Tocsin] {self.summary}"


def why(incident: Incident) -> str:
    details = incident.details or {}
    if incident.kind == Incident.Kind.MISSED_HEARTBEAT:
        check = incident.owner
        note = check.clock_note
        if note:
            # A host clock that is off moves a cron check's runs: a likely cause. A period
            # check is judged by arrival, so there it is only worth knowing.
            label = "Note" if check.schedule_kind == "period" else "Likely cause"
            note = f" {label}: {note}"
        return f"Missed heartbeat: no ping came in time.{note}"
    if incident.kind == Incident.Kind.FAILURE_SIGNAL:
        status = details.get("exit_status")
        with_status = f" with exit status {status}" if status is not None else ""
        return f"Failure signal: the job reported a failure{with_status}."
    return f"{incident.get_kind_display()}."


def build_item(row: Notification, *, user_id: int | None, channel_id: int | None) -> Item:
    incident = row.incident
    check = incident.owner
    details = incident.details or {}
    links = incident_links(incident, user_id=user_id, channel_id=channel_id)
    actions = []
    if row.event in ALERT_EVENTS_WITH_ACTIONS and incident.is_open:
        actions = [
            Action(name, label, links[name])
            for name, label in ACTION_LABELS.items()
            if name in links
        ]
    return Item(
        event=row.event,
        headline=HEADLINES[row.event],
        label=check_label(check),
        check_id=str(check.id),
        check_name=check.name,
        environment=check.environment,
        tags=check.tag_list,
        incident_id=incident.id,
        incident_kind=incident.kind,
        incident_kind_label=incident.get_kind_display(),
        state=incident.state,
        severity=incident.severity,
        why=why(incident),
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        resolution=incident.get_resolution_display() if incident.resolution else "",
        resolved_by=incident.resolved_by.get_username() if incident.resolved_by else "",
        acknowledged_by=(
            incident.acknowledged_by.get_username() if incident.acknowledged_by else ""
        ),
        step=row.step,
        round=row.round,
        expected_at=details.get("expected_at"),
        last_ping_at=details.get("last_ping_at"),
        failed_at=details.get("failed_at"),
        exit_status=details.get("exit_status"),
        run_duration_seconds=details.get("run_duration_seconds", details.get("duration")),
        run_id=details.get("run_id"),
        body_tail=details.get("body_tail") or "",
        check_url=links["check"],
        incident_url=links["incident"],
        actions=actions,
    )


def notification_rows(delivery_ids: list[int]) -> dict[int, list[Notification]]:
    """The notifications that deliveries carry, with what their messages show, in one query."""
    rows: dict[int, list[Notification]] = {delivery_id: [] for delivery_id in delivery_ids}
    for row in (
        Notification.objects.filter(delivery_id__in=delivery_ids)
        .select_related(
            "incident__owner__team", "incident__resolved_by", "incident__acknowledged_by"
        )
        .order_by("created_at", "id")
    ):
        rows[row.delivery_id].append(row)
    return rows


def build_message(delivery: Delivery, rows: list[Notification] | None = None) -> Message:
    """The message of `delivery`; `rows` are its notifications when already loaded (a run
    loads those of many deliveries at once with notification_rows)."""
    if rows is None:
        rows = notification_rows([delivery.id])[delivery.id]
    items = sorted(
        (
            build_item(row, user_id=delivery.recipient_id, channel_id=delivery.channel_id)
            for row in rows
        ),
        key=lambda item: (item.label, item.incident_id),
    )
    return Message(
        delivery_id=delivery.id,
        team_name=delivery.team.name,
        summary=delivery.summary,
        items=items,
        is_test=delivery.is_test,
        timezone=email_zone_name(delivery.recipient_id),
    )
