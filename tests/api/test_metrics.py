"""/api/tocsin/v1/metrics/: the team's Prometheus text, with every family issue 6 names
(check status,
last ping age, run durations, open incidents, sweeper lag, delivery failures), built from
real pings, sweeps and deliveries to a real local webhook receiver, with time as input."""

import re
import uuid
from datetime import timedelta

import pytest

from apps.api.metrics import Family, collect_team_metrics, format_metrics
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.delivery import deliver
from apps.notifications.dispatch import Recipient, notify
from apps.notifications.flush import flush_due_groups
from apps.notifications.models import Channel, Delivery
from tests.factories import CheckFactory
from tests.notifications.receiver import receiving

from .conftest import Api

S = timedelta(seconds=1)


def sample(text: str, name: str, **labels) -> float | None:
    """The value of the sample `name` whose labels include `labels`, or None."""
    for line in text.splitlines():
        metric = line.split("{", 1)[0].split(" ", 1)[0]
        if line.startswith("#") or metric != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_format_escapes_labels_and_writes_help_and_type():
    family = Family("tocsin_x", "gauge", "Help text.")
    family.samples = [({"check": 'a "quoted"\\ name\nnext'}, 1.5), ({}, 2)]
    assert format_metrics([family]) == (
        "# HELP tocsin_x Help text.\n"
        "# TYPE tocsin_x gauge\n"
        'tocsin_x{check="a \\"quoted\\"\\\\ name\\nnext"} 1.5\n'
        "tocsin_x 2\n"
    )


@pytest.fixture
def failing_receiver(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    settings.NOTIFICATION_MAX_ATTEMPTS = 5
    with receiving() as receiver:
        yield receiver


def test_every_family_from_real_pings_sweeps_and_deliveries(team, member, t0, failing_receiver):
    job = CheckFactory(team=team, slug="etl", name="etl")
    rid = uuid.uuid4()
    for kind, at in (("start", t0 - 50 * S), ("success", t0 - 38 * S)):
        record_ping(
            ping=PingData(kind=kind, method="POST", run_id=rid), token=job.ping_token, now=at
        )
    broken = CheckFactory(team=team, slug="backup", name="backup")
    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=2),
        token=broken.ping_token,
        now=t0 - 20 * S,
    )
    sweep_due_checks(now=t0 - 10 * S)
    incident = Incident.objects.get(owner=broken)

    # One webhook that fails for good (404 is permanent), one that fails once and will retry,
    # and the member's own email (sent through the test mail backend).
    failing_receiver.script = [404, 500]
    dead = Channel.objects.create(
        team=team, name="dead", kind="webhook", config={"url": failing_receiver.url("/a")}
    )
    flaky = Channel.objects.create(
        team=team, name="flaky", kind="slack", config={"url": failing_receiver.url("/b")}
    )
    recipients = [Recipient(channel_id=dead.id), Recipient(channel_id=flaky.id)]
    recipients.append(Recipient(user_id=member.id))
    notify(incident=incident, event="down", recipients=recipients, round=0, step=0, now=t0 - 9 * S)
    flush_due_groups(now=t0 - 8 * S)
    for delivery in Delivery.objects.order_by("id"):
        deliver(delivery_id=delivery.id, now=t0 - 7 * S, jitter=0.5)
    assert sorted(Delivery.objects.values_list("status", flat=True)) == [
        "failed",
        "pending",
        "sent",
    ]

    text = format_metrics(collect_team_metrics(team=team, now=t0))

    assert sample(text, "tocsin_check_status", slug="etl", status="up") == 1
    assert sample(text, "tocsin_check_status", slug="etl", status="down") == 0
    assert sample(text, "tocsin_check_status", slug="backup", status="down") == 1
    assert sample(text, "tocsin_check_last_ping_age_seconds", slug="etl") == 38
    assert sample(text, "tocsin_check_last_ping_age_seconds", slug="backup") == 20
    assert sample(text, "tocsin_check_last_run_duration_seconds", slug="etl") == 12
    assert sample(text, "tocsin_incidents_open", state="triggered", severity="warning") == 1
    assert sample(text, "tocsin_sweeper_lag_seconds") == 10
    assert sample(text, "tocsin_deliveries", status="failed", kind="webhook") == 1
    assert sample(text, "tocsin_deliveries", status="pending", kind="slack") == 1
    assert sample(text, "tocsin_deliveries", status="sent", kind="member_email") == 1
    assert sample(text, "tocsin_deliveries", status="failed", kind="slack") == 0
    assert sample(text, "tocsin_deliveries_retrying", kind="slack") == 1
    assert sample(text, "tocsin_deliveries_retrying", kind="webhook") == 0
    assert sample(text, "tocsin_notifications", status="failed") == 1

    # A deleted channel's failures still count, under their own kind.
    dead.delete()
    text = format_metrics(collect_team_metrics(team=team, now=t0))
    assert sample(text, "tocsin_deliveries", status="failed", kind="deleted") == 1


def test_before_any_ping_or_sweep_the_ages_and_lag_are_absent(team, check, t0):
    text = format_metrics(collect_team_metrics(team=team, now=t0))
    assert sample(text, "tocsin_check_status", status="new") == 1
    assert sample(text, "tocsin_check_last_ping_age_seconds") is None
    assert sample(text, "tocsin_sweeper_lag_seconds") is None
    assert "# TYPE tocsin_sweeper_lag_seconds gauge" in text


def test_endpoint_serves_prometheus_text_to_a_read_only_key(ro_api, check):
    response = ro_api.get("/api/tocsin/v1/metrics/", headers={"Accept": "text/plain"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.content.decode()
    assert sample(text, "tocsin_check_status", slug="nightly-backup", status="new") == 1


def test_another_teams_key_sees_only_its_own_team(other_key, check):
    text = Api(other_key).get("/api/tocsin/v1/metrics/").content.decode()
    assert "nightly-backup" not in text
    assert str(check.id) not in text


def test_no_key_or_a_bad_key_is_401(anon_api, check):
    assert anon_api.get("/api/tocsin/v1/metrics/").status_code == 401
    assert Api("nope").get("/api/tocsin/v1/metrics/").status_code == 401


def test_writes_are_refused(api, ro_api):
    assert api.post("/api/tocsin/v1/metrics/", {}).status_code == 405
    assert ro_api.post("/api/tocsin/v1/metrics/", {}).status_code == 403
