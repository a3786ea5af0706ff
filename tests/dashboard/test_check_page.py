"""The check page: what matters first (status, schedule, next expected ping, incidents, runs,
pings) in one polled region, the snippets below it in tabs, and the crontab line built from the
check's own schedule."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from tests.factories import CheckFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
MIN = timedelta(minutes=1)


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def detail(check):
    return reverse("dashboard:check-detail", args=[check.id])


def ping(check, kind="success", *, now, **kw):
    assert record_ping(
        ping=PingData(kind=kind, method="POST", **kw), token=check.ping_token, now=now
    )


def test_status_incidents_runs_and_pings_come_before_the_snippets(owner, check, t0):
    ping(check, now=t0)
    ping(check, "fail", now=t0 + MIN, exit_status=1)
    sweep_due_checks(now=t0 + 2 * MIN)
    body = client_for(owner).get(detail(check)).text
    order = [
        'id="check-status"',
        'data-status="down"',
        'id="incidents-heading"',
        'id="acknowledge-',
        'id="runs-heading"',
        'id="pings-heading"',
        'id="flips-heading"',
        'id="ping-url-heading"',
        'id="snippets-heading"',
    ]
    positions = [body.index(marker) for marker in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    # Codes are words: "Failure signal", never "(failure_signal)".
    assert "failure_signal" not in body and "(Failure signal)" in body
    assert "(First ping)" in body


def test_polled_region_carries_incidents_runs_and_pings(owner, check, t0):
    ping(check, now=t0)
    ping(check, "fail", now=t0 + MIN, exit_status=1, body=b"disk full")
    sweep_due_checks(now=t0 + 2 * MIN)
    incident = Incident.objects.get(owner=check)
    client = client_for(owner)
    partial = client.get(detail(check), **HTMX).text.strip()
    assert partial.startswith('<div id="check-status"')
    assert f'id="incident-{incident.id}"' in partial and 'id="acknowledge-' in partial
    assert 'id="ping-2"' in partial and 'id="ping-body-2" hx-preserve="true"' in partial
    assert "Ping URL" not in partial and "snippet-" not in partial
    assert "with 1 open incident." in partial

    # The job recovers: the next poll has no Acknowledge or Resolve left.
    ping(check, now=t0 + 3 * MIN)
    sweep_due_checks(now=t0 + 4 * MIN)
    partial = client.get(detail(check), **HTMX).text
    assert 'data-status="up"' in partial
    assert 'id="acknowledge-' not in partial and 'id="resolve-' not in partial
    assert 'data-state="resolved"' in partial and 'id="ping-3"' in partial


def test_next_expected_ping_follows_the_schedule(owner, team, t0):
    check = CheckFactory(team=team, period=timedelta(hours=1), grace=timedelta(minutes=5))
    client = client_for(owner)
    assert "after the first ping" in client.get(detail(check)).text
    ping(check, now=t0)
    sweep_due_checks(now=t0 + MIN)
    body = client.get(detail(check)).text
    expected = (t0 + timedelta(hours=1)).isoformat()
    assert f'id="next-expected"><time datetime="{expected}">' in body


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"schedule_kind": "cron", "schedule_expression": "0 3 * * 1-5"}, "0 3 * * 1-5 "),
        ({"schedule_kind": "period", "period": timedelta(minutes=15)}, "*/15 * * * * "),
        ({"schedule_kind": "period", "period": timedelta(minutes=7)}, "0 3 * * * "),
        ({"schedule_kind": "oncalendar", "schedule_expression": "Mon..Fri 03:00"}, "0 3 * * * "),
    ],
    ids=["cron", "period-15m", "period-7m-no-cron-equivalent", "oncalendar"],
)
def test_crontab_snippet_follows_the_checks_schedule(owner, team, fields, line):
    check = CheckFactory(team=team, **fields)
    body = client_for(owner).get(detail(check)).text
    assert f'<pre id="snippet-cron">{line}/path/to/job.sh' in body
    exact = fields["schedule_kind"] == "cron" or "15" in str(fields.get("period"))
    assert ("put your job's own schedule" in body) != exact


def test_snippets_are_tabs_that_work_without_the_script(owner, check):
    body = client_for(owner).get(detail(check)).text
    # The tab list starts hidden (the script shows it); every panel is visible without it.
    assert '<div role="tablist" aria-label="Snippets" class="tablist" hidden>' in body
    for panel in ("cron", "shell", "wrapper", "python", "powershell"):
        assert f'role="tabpanel" id="panel-{panel}" aria-labelledby="tab-{panel}">' in body
        assert f'aria-controls="panel-{panel}"' in body


def test_outsider_gets_404_for_the_page_and_the_poll(outsider, check):
    client = client_for(outsider)
    assert client.get(detail(check)).status_code == 404
    assert client.get(detail(check), **HTMX).status_code == 404
