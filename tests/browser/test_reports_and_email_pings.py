"""Status reports and email pings in real Chromium: the account page's report setting (a bad
value refused next to the field, then saved), the check page's downtime table and its
email-ping address, and the unsubscribe link from a real report."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from playwright.sync_api import expect

from apps.checks.models import Flip
from apps.clock import database_now
from apps.notifications.status_reports import send_due_reports
from apps.teams.models import UserSettings

from .conftest import screenshot
from .helpers import assert_accessible_basics

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_report_setting_downtime_table_and_unsubscribe(new_page, site, owner, check, settings):
    settings.PING_EMAIL_DOMAIN = "pings.tocsin.example"
    page = new_page(owner)
    page.goto("/account/")
    select = page.get_by_label("Send me a report")
    expect(select).to_have_value("monthly")
    # A value the list does not offer, as a hostile client would send it.
    select.evaluate("el => { el.options[0].value = 'yearly'; el.selectedIndex = 0; }")
    page.get_by_role("button", name="Save the reports setting").click()
    expect(page.locator("#id_report_frequency_error")).to_contain_text("Choose off, daily")
    page.get_by_label("Send me a report").select_option("weekly")
    page.get_by_role("button", name="Save the reports setting").click()
    expect(page.get_by_role("alert").filter(has_text="weekly status report")).to_be_visible()
    assert UserSettings.objects.get(user=owner).report_frequency == "weekly"

    now = database_now()
    Flip.objects.create(
        owner=check,
        from_status="up",
        to_status="down",
        happened_at=now - timedelta(minutes=1),
        reason="test",
    )
    page.goto(f"/checks/{check.id}/")
    expect(page.locator("#ping-email")).to_have_text(f"{check.id}@pings.tocsin.example")
    table = page.locator("#downtime-months")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").first).to_contain_text("(so far)")
    expect(table.locator("tbody tr").first).to_contain_text(re.compile(r"1 min \d+ s|\d+ min"))
    assert_accessible_basics(page, "check page with downtime table")
    screenshot(page, "check-downtime-table")

    owner.date_joined = now - timedelta(days=60)
    owner.save()
    assert send_due_reports(now=now) == 1
    url = re.search(r"Unsubscribe: (\S+)", mail.outbox[0].body)[1]
    page.goto(url)
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.locator("#unsubscribed")).to_be_visible()
    assert UserSettings.objects.get(user=owner).report_frequency == "off"
    assert page.errors == []
