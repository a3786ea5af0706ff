"""The check form's detection settings, the live schedule preview and the check page's runs."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.checks.models import Check, Run
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from tests.factories import CheckFactory

CREATE = reverse("dashboard:check-create")
PREVIEW = reverse("dashboard:schedule-preview")
MIN = timedelta(minutes=1)

VALID = {
    "name": "Nightly backup",
    "slug": "",
    "schedule_kind": "cron",
    "period_0": "1",
    "period_1": "days",
    "schedule_expression": "0 3 * * *",
    "timezone": "Europe/Riga",
    "grace_0": "30",
    "grace_1": "minutes",
    "max_runtime_0": "2",
    "max_runtime_1": "hours",
    "progress_timeout_0": "",
    "progress_timeout_1": "hours",
    "missed_tolerance": "2",
    "success_keywords": "Backup complete",
    "failure_keywords": "ERROR\nFATAL",
    "partial_max_failed": "",
    "partial_max_ratio": "0.05",
    "transient_exit_statuses": "75, 69",
    "transient_limit": "3",
    "failure_threshold": "2",
    "recovery_threshold": "1",
    "flap_threshold": "4",
    "flap_window_0": "1",
    "flap_window_1": "hours",
    "severity": "warning",
    "severity_raise_after_0": "1",
    "severity_raise_after_1": "hours",
    "severity_raise_to": "critical",
}


def errors_of(html: str, field: str) -> str:
    """The text of the error list rendered next to `field` (empty when there is none)."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


def ping(check, now, kind="success", **facts):
    data = PingData(kind=kind, method="POST", **facts)
    assert record_ping(ping=data, token=check.ping_token, now=now)


def test_creating_a_cron_check_in_a_timezone_stores_every_setting(owner_client, team):
    response = owner_client.post(CREATE, VALID)

    check = Check.objects.get(team=team, slug="nightly-backup")
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:check-detail", args=[check.id])
    assert (check.schedule_kind, check.schedule_expression, check.timezone) == (
        "cron",
        "0 3 * * *",
        "Europe/Riga",
    )
    assert check.max_runtime == timedelta(hours=2)
    assert check.progress_timeout is None
    assert check.severity_raise_after == timedelta(hours=1)
    assert check.partial_max_ratio == 0.05
    assert check.partial_max_failed is None
    assert check.transient_exit_statuses == "69 75"
    assert (check.failure_threshold, check.missed_tolerance, check.flap_threshold) == (2, 2, 4)
    assert check.rules().failure_keywords == ("ERROR", "FATAL")


def test_settings_left_out_of_the_submission_take_their_defaults(owner_client, team):
    minimal = {k: VALID[k] for k in ("name", "period_0", "period_1", "grace_0", "grace_1")}

    response = owner_client.post(CREATE, minimal)

    assert response.status_code == 302
    check = Check.objects.get(team=team)
    defaults = Check()
    for name in ("schedule_kind", "timezone", "failure_threshold", "transient_exit_statuses"):
        assert getattr(check, name) == getattr(defaults, name), name
    assert check.flap_window == defaults.flap_window
    assert check.max_runtime is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"schedule_expression": "61 * * * *"}, "schedule_expression", "Invalid cron expression"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown timezone"),
        ({"schedule_expression": "0 0 3 * * *"}, "schedule_expression", "has 5 fields"),
        ({"schedule_expression": ""}, "schedule_expression", "Enter an expression"),
        ({"partial_max_ratio": "2"}, "partial_max_ratio", "from 0 to 1"),
        ({"failure_threshold": "0"}, "failure_threshold", "from 1 to 100"),
        ({"recovery_threshold": "101"}, "recovery_threshold", "from 1 to 100"),
        ({"transient_exit_statuses": "abc"}, "transient_exit_statuses", "“abc” is not an exit"),
        ({"max_runtime_0": "0"}, "max_runtime", "at least 1 second"),
    ],
    ids=[
        "invalid-cron",
        "unknown-timezone",
        "six-field-cron",
        "empty-expression",
        "ratio-2",
        "threshold-0",
        "threshold-101",
        "transient-abc",
        "zero-runtime",
    ],
)
def test_invalid_settings_are_explained_next_to_their_field_and_create_nothing(
    owner_client, changes, field, message
):
    response = owner_client.post(CREATE, {**VALID, **changes})

    assert response.status_code == 400
    assert message in errors_of(response.content.decode(), field)
    assert not Check.objects.exists()


def test_form_groups_the_settings_and_wires_the_live_preview(owner_client):
    html = owner_client.get(CREATE).content.decode()

    for legend in ("Schedule", "Runs", "What counts", "Alerting", "Severity"):
        assert f"<legend>{legend}</legend>" in html
    expression = re.search(r'<input[^>]*name="schedule_expression"[^>]*>', html).group(0)
    assert f'hx-get="{PREVIEW}"' in expression
    assert 'hx-trigger="change, keyup changed delay:400ms"' in expression
    assert 'hx-target="#schedule-preview"' in expression
    assert 'id="schedule-preview"' in html


def test_preview_lists_the_next_five_times_in_the_timezone_and_utc(owner_client):
    response = owner_client.get(
        PREVIEW,
        {"schedule_kind": "cron", "schedule_expression": "0 3 * * *", "timezone": "Europe/Riga"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    local_times = re.findall(r"\d{4}-\d\d-\d\d 03:00 Europe/Riga", html)
    assert len(local_times) == 5
    # Riga is UTC+2 in winter and UTC+3 in summer: 03:00 there is 01:00 or 00:00 UTC.
    assert len(re.findall(r"\d{4}-\d\d-\d\d 0[01]:00 UTC", html)) == 5


def test_preview_of_a_period_counts_from_now(owner_client):
    response = owner_client.get(
        PREVIEW, {"schedule_kind": "period", "period_0": "6", "period_1": "hours"}
    )

    assert response.status_code == 200
    assert len(re.findall(r"<li>", response.content.decode())) == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"schedule_kind": "cron", "schedule_expression": "bad"}, "cron expression has 5 fields"),
        (
            {"schedule_kind": "cron", "schedule_expression": "0 3 * * *", "timezone": "Nowhere"},
            "Unknown timezone",
        ),
        ({"schedule_kind": "oncalendar", "schedule_expression": "bad"}, "Invalid OnCalendar"),
        ({"schedule_kind": "sometimes"}, "Select a valid choice"),
    ],
    ids=["bad-cron", "bad-timezone", "bad-oncalendar", "bad-kind"],
)
def test_preview_explains_an_unusable_schedule(owner_client, query, message):
    response = owner_client.get(PREVIEW, query)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-preview="error"' in html
    assert message in html
    assert "<li>" not in html


def test_preview_sends_an_anonymous_visitor_to_login(client, db):
    response = client.get(PREVIEW, {"schedule_kind": "cron", "schedule_expression": "0 3 * * *"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_preview_is_for_any_team_member_but_not_for_a_user_without_a_team(client, outsider, db):
    query = {"schedule_kind": "cron", "schedule_expression": "0 3 * * *"}
    client.force_login(outsider)
    assert client.get(PREVIEW, query).status_code == 200

    loner = get_user_model().objects.create_user("loner", password="x")
    client.force_login(loner)
    assert client.get(PREVIEW, query).status_code == 403


def test_check_page_lists_runs_with_their_durations(owner_client, check, t0):
    ping(check, t0, kind="start")
    ping(check, t0 + 5 * MIN, exit_status=0)
    ping(check, t0 + 60 * MIN, kind="start")
    sweep_due_checks(now=t0 + 61 * MIN)

    finished = Run.objects.get(owner=check, ended_at__isnull=False)
    assert finished.duration == 5 * MIN
    html = owner_client.get(reverse("dashboard:check-detail", args=[check.id])).content.decode()
    assert 'id="runs-heading"' in html
    row = re.search(rf'<tr id="run-{finished.id}">.*?</tr>', html, re.S).group(0)
    assert "5 min 0 s" in row
    assert "Succeeded" in row
    assert "2 Nov 2026, 03:05:00 UTC" in row  # t0 + 5 minutes, in the reader's zone (UTC)
    # The second run has started and not finished: it is listed as running now.
    assert "Running now" in html
    assert "clock-offset" in html
    assert "<strong>Warning:</strong>" not in html


def test_check_page_warns_about_a_job_clock_far_off(owner_client, check, t0):
    ping(check, t0, sent_at=t0 - 10 * MIN)
    sweep_due_checks(now=t0 + MIN)

    check.refresh_from_db()
    assert check.clock_offset_seconds == 600
    html = owner_client.get(reverse("dashboard:check-detail", args=[check.id])).content.decode()
    offset = re.search(r'<p id="clock-offset" class="warning">(.*?)</p>', html, re.S)
    assert offset is not None
    assert "600.0 s" in offset.group(1)
    assert "<strong>Warning:</strong>" in offset.group(1)
    # A period check: the host's clock is reported, and said to move no deadline.
    assert "The job host&#x27;s clock is 10 minutes behind Tocsin&#x27;s." in offset.group(1)
    assert "moves no deadline" in offset.group(1)


def test_check_page_says_a_cron_hosts_clock_is_followed_up_to_a_cap(owner_client, team, t0):
    check = CheckFactory(
        team=team, schedule_kind="cron", schedule_expression="0 3 * * *", grace=10 * MIN
    )
    ping(check, t0, sent_at=t0 + 2 * 60 * MIN)  # the host's clock is two hours fast
    sweep_due_checks(now=t0 + MIN)
    html = owner_client.get(reverse("dashboard:check-detail", args=[check.id])).content.decode()
    offset = re.search(r'<p id="clock-offset" class="warning">(.*?)</p>', html, re.S).group(1)
    assert "2 hours ahead of Tocsin" in offset
    assert "expected at most 15 minutes earlier" in offset
