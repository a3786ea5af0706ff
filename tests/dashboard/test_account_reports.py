"""The status-report setting on the account page, and the check page's downtime table."""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from apps.checks.models import Flip
from apps.clock import database_now
from apps.dashboard.views import downtime_months
from apps.teams.models import UserSettings

ACCOUNT = reverse("dashboard:account")


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_monthly_is_chosen_until_the_person_changes_it(owner):
    body = client_for(owner).get(ACCOUNT).text
    assert 'id="reports-form"' in body
    assert '<option value="monthly" selected>' in body


@pytest.mark.parametrize("choice", ["off", "daily", "weekly", "monthly"])
def test_choosing_a_frequency_saves_it_and_keeps_the_zone(owner, choice):
    UserSettings.objects.create(user=owner, display_timezone="Europe/Riga")
    client = client_for(owner)
    response = client.post(ACCOUNT, {"report_frequency": choice, "save_reports": ""})
    assert response.status_code == 302
    saved = UserSettings.objects.get(user=owner)
    assert (saved.report_frequency, saved.display_timezone) == (choice, "Europe/Riga")
    assert f'<option value="{choice}" selected>' in client.get(ACCOUNT).text


@pytest.mark.parametrize(
    "data",
    [
        {"report_frequency": "yearly"},
        {"report_frequency": ""},
        {},
        {"report_frequency": "monthly" * 1000},
        {"report_frequency": "<script>alert(1)</script>"},
        {"report_frequency": "off\x00"},
    ],
    ids=["unknown", "empty", "missing", "oversized", "hostile", "nul"],
)
def test_bad_frequency_is_refused_next_to_the_field_and_changes_nothing(owner, data):
    response = client_for(owner).post(ACCOUNT, {**data, "save_reports": ""})
    assert response.status_code == 400
    assert "Choose off, daily, weekly or monthly." in response.text or (
        "This field is required." in response.text
    )
    assert "<script>alert(1)</script>" not in response.text
    assert not UserSettings.objects.filter(user=owner).exists()


def test_anonymous_cannot_change_it(client, owner):
    response = client.post(ACCOUNT, {"report_frequency": "off", "save_reports": ""})
    assert response.status_code == 302
    assert not UserSettings.objects.filter(user=owner).exists()


def test_csrf_is_required(owner):
    client = client_for(owner, enforce_csrf_checks=True)
    response = client.post(ACCOUNT, {"report_frequency": "off", "save_reports": ""})
    assert response.status_code == 403


# The check page's downtime table (the same computation as the reports).


def _flip(check, at, to_status):
    Flip.objects.create(
        owner=check, from_status="up", to_status=to_status, happened_at=at, reason="test"
    )


def test_downtime_months_for_this_month_and_the_two_before_in_the_readers_zone(check):
    _flip(check, datetime(2026, 9, 30, 20, 0, tzinfo=UTC), "down")  # 30 Sep 23:00 in Riga
    _flip(check, datetime(2026, 9, 30, 22, 0, 5, tzinfo=UTC), "up")  # 1 Oct 01:00:05 there
    _flip(check, datetime(2026, 11, 3, 10, 0, tzinfo=UTC), "down")
    _flip(check, datetime(2026, 11, 3, 10, 0, 42, tzinfo=UTC), "paused")
    _flip(check, datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "down")
    now = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    months = downtime_months(check, now=now, zone=ZoneInfo("Europe/Riga"))
    assert [(m.first_day.isoformat(), d.total, d.spells) for m, d in months] == [
        # December so far: 1 h 30 min, still down.
        ("2026-12-01", timedelta(hours=1, minutes=30), 1),
        # November: 42 s, then paused (not downtime).
        ("2026-11-01", timedelta(seconds=42), 1),
        # Riga's October began at 30 Sep 21:00 UTC: the hour before 22:00:05 UTC is its own.
        ("2026-10-01", timedelta(hours=1, seconds=5), 1),
    ]
    utc_months = downtime_months(check, now=now, zone=ZoneInfo("UTC"))
    assert utc_months[2][1].total == timedelta(0)  # UTC's October: none of it
    assert utc_months[0][1].total == timedelta(hours=1, minutes=30)


def test_check_page_shows_the_downtime_table_in_the_readers_zone(owner, check):
    UserSettings.objects.create(user=owner, display_timezone="Asia/Tokyo")
    _flip(check, database_now() - timedelta(days=1), "down")
    html = client_for(owner).get(reverse("dashboard:check-detail", args=[check.id])).text
    start = html.index('id="downtime-months"')
    table = html[start : html.index("</table>", start)]
    this_month = database_now().astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")
    rows = table.split("<tr id=")[1:]
    assert len(rows) == 3
    assert rows[0].startswith(f'"downtime-{this_month}"')
    assert "(so far)" in rows[0]
    assert "Months in Asia/Tokyo" in html
    downs = [re.search(r'data-label="Times down">(\d+)<', row)[1] for row in rows]
    assert sum(int(n) for n in downs) >= 1  # the down flip a day ago is in one of them


def test_outsider_gets_404_on_the_check_page(outsider, check):
    response = client_for(outsider).get(reverse("dashboard:check-detail", args=[check.id]))
    assert response.status_code == 404


def test_check_page_shows_the_email_addresses_only_with_a_domain(owner, check, settings):
    url = reverse("dashboard:check-detail", args=[check.id])
    settings.PING_EMAIL_DOMAIN = ""
    assert 'id="ping-email"' not in client_for(owner).get(url).text
    settings.PING_EMAIL_DOMAIN = "pings.tocsin.example"
    html = client_for(owner).get(url).text
    assert f'<code id="ping-email">{check.id}@pings.tocsin.example</code>' in html
    assert f"{check.team.ping_key}+nightly-backup@pings.tocsin.example" in html
