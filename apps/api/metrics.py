"""A team's metrics in the Prometheus text format (version 0.0.4).

`collect_team_metrics` reads the numbers (one query per family); `format_metrics` is a pure
function from families to text, so the format is tested without a database.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, CharField, Count, F, OuterRef, Q, Subquery, Value, When

from apps.checks.models import Check, Run, SweepRun
from apps.incidents.models import Incident
from apps.notifications.models import Channel, Delivery, Notification
from apps.teams.models import Team


@dataclass
class Family:
    name: str
    kind: str  # gauge or counter
    help: str
    samples: list[tuple[dict, float]] = field(default_factory=list)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_metrics(families: list[Family]) -> str:
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            name = f"{family.name}{{{rendered}}}" if rendered else family.name
            lines.append(f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


def _check_labels(check: Check) -> dict:
    return {
        # Not the UUID: it is the ping URL, and metrics travel far (Prometheus, Grafana).
        "check_id": check.unique_key,
        "check": check.name,
        "slug": check.slug,
        "environment": check.environment,
    }


def collect_team_metrics(*, team: Team, now: datetime) -> list[Family]:
    last_duration = (
        Run.objects.filter(owner=OuterRef("pk"), duration__isnull=False)
        .order_by("-id")
        .values("duration")[:1]
    )
    checks = list(
        Check.objects.filter(team=team)
        .annotate(last_run_duration=Subquery(last_duration))
        .order_by("name", "id")
    )
    status = Family(
        "tocsin_check_status",
        "gauge",
        "1 for the check's current status, 0 for the others.",
    )
    age = Family(
        "tocsin_check_last_ping_age_seconds",
        "gauge",
        "Seconds since the check's last ping (absent before the first).",
    )
    duration = Family(
        "tocsin_check_last_run_duration_seconds",
        "gauge",
        "Duration of the check's latest finished run.",
    )
    open_runs = Family("tocsin_check_open_runs", "gauge", "Runs started and not yet finished.")
    pings = Family("tocsin_check_pings_total", "counter", "Pings the check has received.")
    for check in checks:
        labels = _check_labels(check)
        for value, _ in Check.Status.choices:
            status.samples.append(({**labels, "status": value}, int(check.status == value)))
        if check.last_ping_at is not None:
            age.samples.append((labels, max(0.0, (now - check.last_ping_at).total_seconds())))
        if check.last_run_duration is not None:
            duration.samples.append((labels, check.last_run_duration.total_seconds()))
        open_runs.samples.append((labels, len(check.open_runs)))
        pings.samples.append((labels, check.n_pings))

    incidents = Family(
        "tocsin_incidents_open", "gauge", "Open incidents (triggered or acknowledged)."
    )
    counts: dict[tuple[str, str], int] = {}
    for state, severity, n in (
        Incident.objects.filter(owner__team=team)
        .exclude(state=Incident.State.RESOLVED)
        .values_list("state", "severity")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[(state, severity)] = n
    for state in (Incident.State.TRIGGERED, Incident.State.ACKNOWLEDGED):
        for severity, _ in Check.Severity.choices:
            incidents.samples.append(
                ({"state": state, "severity": severity}, counts.get((state, severity), 0))
            )

    deliveries = Family(
        "tocsin_notifications",
        "gauge",
        "The team's notifications by delivery status (failed: given up after all attempts).",
    )
    by_status = dict(
        Notification.objects.filter(incident__owner__team=team)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    for value, _ in Notification.DeliveryStatus.choices:
        deliveries.samples.append(({"status": value}, by_status.get(value, 0)))

    lag = Family(
        "tocsin_sweeper_lag_seconds",
        "gauge",
        "Seconds since the last sweep started (absent before the first sweep).",
    )
    last_sweep = SweepRun.objects.order_by("-started_at").values_list("started_at", flat=True)
    last_sweep_at = last_sweep.first()
    if last_sweep_at is not None:
        lag.samples.append(({}, max(0.0, (now - last_sweep_at).total_seconds())))
    return [status, age, duration, open_runs, pings, incidents, deliveries, *_deliveries(team), lag]


# Delivery kinds: a member's own email, one of the channel kinds, or a channel since deleted.
_DELIVERY_KINDS = ["member_email", *Channel.Kind.values, "deleted"]


def _deliveries(team: Team) -> list[Family]:
    """The outbound messages (each carries one or more notifications) by status and kind, and
    those that failed at least once and will be tried again: where delivery failures show
    before they are final. Test messages sent from a channel's page are left out."""
    kind = Case(
        When(target__startswith="user:", then=Value("member_email")),
        When(channel__isnull=True, then=Value("deleted")),
        default=F("channel__kind"),
        output_field=CharField(),
    )
    rows = (
        Delivery.objects.filter(team=team, is_test=False)
        .annotate(kind=kind)
        .values_list("status", "kind")
        .annotate(
            n=Count("id"),
            retrying=Count("id", filter=Q(status=Delivery.Status.PENDING, attempts__gt=0)),
        )
        .order_by()
    )
    counts, retrying = {}, dict.fromkeys(_DELIVERY_KINDS, 0)
    for status, kind_name, n, n_retrying in rows:
        counts[(status, kind_name)] = n
        retrying[kind_name] = retrying.get(kind_name, 0) + n_retrying
    by_status = Family(
        "tocsin_deliveries",
        "gauge",
        "The team's outbound messages by status (failed: given up after all attempts) and kind.",
    )
    for status, _ in Delivery.Status.choices:
        for kind_name in _DELIVERY_KINDS:
            labels = {"status": status, "kind": kind_name}
            by_status.samples.append((labels, counts.get((status, kind_name), 0)))
    failing = Family(
        "tocsin_deliveries_retrying",
        "gauge",
        "Messages whose last attempt failed and that will be tried again.",
    )
    for kind_name, n in retrying.items():
        failing.samples.append(({"kind": kind_name}, n))
    return [by_status, failing]
