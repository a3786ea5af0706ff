"""The check form shows what most checks need: the schedule fields of the chosen kind (the
script hides the others), a time-zone list, the rest under Advanced (opened on an error there),
and a cron expression read back in plain words beside the preview."""

import re

import pytest
from django.urls import reverse

from apps.dashboard.schedule_words import describe_schedule

CREATE = reverse("dashboard:check-create")
PREVIEW = reverse("dashboard:schedule-preview")


def test_schedule_fields_say_which_kind_they_belong_to(owner_client):
    html = owner_client.get(CREATE).text
    assert re.search(r'<div data-show-for="period">\s*<div class="field[^"]*">\s*<fieldset', html)
    assert '<div data-show-for="cron oncalendar"><div class="field">' in re.sub(r"\s+<", "<", html)
    assert html.count('data-show-for="all"') == 2  # the kind itself and the grace
    timezone = re.search(r'<input[^>]*name="timezone"[^>]*>', html).group(0)
    assert 'list="zone-names"' in timezone
    assert '<datalist id="zone-names">' in html and '<option value="Europe/Riga">' in html
    assert '<option value="oncalendar">OnCalendar</option>' in html


def test_advanced_groups_are_folded_and_open_on_their_errors(owner_client):
    html = owner_client.get(CREATE).text
    assert '<details class="advanced" id="advanced">' in html
    summary = re.search(r"<summary>(Advanced[^<]*)</summary>", html).group(1)
    assert summary == "Advanced: runs, what counts, email pings, alerting, severity"
    folded = html[
        html.index('id="advanced"') : html.index("</details>", html.index('id="advanced"'))
    ]
    for legend in ("Runs", "What counts", "Email pings", "Alerting", "Severity"):
        assert f"<legend>{legend}</legend>" in folded
    assert "<legend>Escalation</legend>" not in folded and "<legend>Schedule</legend>" not in folded

    response = owner_client.post(
        CREATE, {"name": "x", "period_0": "1", "period_1": "days", "failure_threshold": "0"}
    )
    assert response.status_code == 400
    assert '<details class="advanced" id="advanced" open>' in response.text

    response = owner_client.post(CREATE, {"name": "", "period_0": "1", "period_1": "days"})
    assert response.status_code == 400
    assert '<details class="advanced" id="advanced">' in response.text  # error elsewhere


def test_preview_reads_a_cron_expression_in_plain_words(owner_client):
    html = owner_client.get(
        PREVIEW,
        {"schedule_kind": "cron", "schedule_expression": "0 3 * * 1-5", "timezone": "Europe/Riga"},
    ).text
    assert (
        '<p class="schedule-reading" data-preview="reading">'
        "At 03:00, Monday through Friday (Europe/Riga time)</p>"
    ) in html
    assert 'data-preview="times"' in html


@pytest.mark.parametrize(
    "query",
    [
        {"schedule_kind": "cron", "schedule_expression": "61 * * * *", "timezone": "UTC"},
        {"schedule_kind": "cron", "schedule_expression": "<script>", "timezone": "UTC"},
        {"schedule_kind": "period", "period_0": "6", "period_1": "hours"},
        {"schedule_kind": "oncalendar", "schedule_expression": "*:0/7:30", "timezone": "UTC"},
    ],
    ids=["invalid-cron", "hostile", "period", "oncalendar-beyond-the-reader"],
)
def test_preview_has_no_reading_where_none_applies(owner_client, query):
    html = owner_client.get(PREVIEW, query).text
    assert "schedule-reading" not in html
    assert "<script>" not in html


@pytest.mark.parametrize(
    ("kind", "expression", "expected"),
    [
        ("cron", "0 3 * * 1-5", "At 03:00, Monday through Friday (UTC time)"),
        ("cron", "  */15   9-17 * * * ", "Every 15 minutes, between 09:00 and 17:59 (UTC time)"),
        ("cron", "@daily", "At 00:00 (UTC time)"),
        ("cron", "* * *", ""),
        ("cron", "x y z a b", ""),
        ("cron", "", ""),
        ("oncalendar", "Mon..Fri 03:00", "At 03:00, Monday through Friday (UTC time)"),
        ("oncalendar", "Mon..Fri 03:00:15", ""),
        ("period", "", ""),
    ],
)
def test_describe_schedule(kind, expression, expected):
    assert describe_schedule(kind, expression, "UTC") == expected
