"""Issue 15 in a real Chromium: the check page follows a recovery live (incidents and pings),
the incident list and page fit a 390 px phone, a rotation's 09:00 handoff reads 09:00 in its
zone, the account page sets the display zone, error pages, and the dark theme. Screenshots of
each, desktop and phone, light and dark, go to test-artifacts/screenshots/."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from apps.clock import database_now
from apps.escalation.models import Rotation
from apps.incidents.models import Incident
from apps.teams.models import UserSettings
from tests.factories import CheckFactory

from .conftest import PHONE, screenshot
from .helpers import (
    assert_accessible_basics,
    assert_fits_horizontally,
    assert_same_document,
    http,
    make_down,
    mark_page,
    sweep,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_check_page_follows_a_recovery_without_a_reload(new_page, site, team, member):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    row = page.locator(f"#incident-{incident.id}")
    expect(row.locator(".pill")).to_have_text("Triggered")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    # An opened log stays open across polls.
    page.locator("#ping-2 summary").click()
    mark_page(page)

    assert http(f"{site}/ping/{check.ping_token}") == (200, "OK")
    sweep()
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    expect(page.locator("#check-status .status-line .pill")).to_have_text("Up")
    expect(row.locator(".pill")).to_have_text("Resolved")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    expect(page.locator("#ping-3")).to_be_visible()  # the recovering ping, listed live
    expect(page.locator("#ping-2 pre")).to_be_visible()
    expect(page.locator("#no-pings")).to_have_count(0)
    assert_same_document(page)
    assert page.errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_pages_fit_and_look_right_in_both_themes(new_page, site, owner, team, viewport, scheme):
    check = CheckFactory(
        team=team,
        name="nightly-" + "x" * 60,
        schedule_kind="cron",
        schedule_expression="0 3 * * 1-5",
    )
    incident = make_down(site, check)
    for _ in range(2):
        http(f"{site}/ping/{check.ping_token}/start")
        http(f"{site}/ping/{check.ping_token}/fail")
    sweep()
    page = new_page(owner, viewport=PHONE) if viewport == "phone" else new_page(owner)
    page.emulate_media(color_scheme=scheme)
    pages = {
        "list": "/",
        "check": f"/checks/{check.id}/",
        "incidents": "/incidents/",
        "incident": f"/incidents/{incident.id}/",
        "account": "/account/",
        "not-found": "/no/such/page/",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        if name in ("incidents", "incident", "check"):
            expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
            box = page.get_by_role("button", name="Acknowledge").bounding_box()
            width = page.evaluate("window.innerWidth")
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (name, box, width)
        assert_fits_horizontally(page, f"{name} ({viewport}, {scheme})")
        assert_accessible_basics(page, name)
        screenshot(page, f"design-{viewport}-{scheme}-{name}")
    # The theme really follows the system setting: the page background is dark or light.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert (sum(channels) < 150) == (scheme == "dark"), background
    assert page.errors == []


def test_snippet_tabs_switch_with_a_click_and_the_arrow_keys(new_page, owner, team):
    check = CheckFactory(team=team, schedule_kind="cron", schedule_expression="0 3 * * 1-5")
    page = new_page(owner)
    page.goto(f"/checks/{check.id}/")
    expect(page.locator("#snippet-cron")).to_be_visible()
    expect(page.locator("#snippet-cron")).to_contain_text("0 3 * * 1-5 /path/to/job.sh")
    expect(page.locator("#snippet-python")).to_be_hidden()
    page.get_by_role("tab", name="Python").click()
    expect(page.locator("#snippet-python")).to_be_visible()
    expect(page.locator("#snippet-cron")).to_be_hidden()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="PowerShell")).to_be_focused()
    expect(page.locator("#snippet-powershell")).to_be_visible()


def test_rotation_handoff_reads_0900_in_its_zone_and_the_account_zone_applies(
    new_page, owner, team
):
    rotation = Rotation.objects.create(
        team=team,
        name="Riga",
        timezone="Europe/Riga",
        cadence="daily",
        handoff_time="09:00",
        start_date=(database_now() - timedelta(days=2)).date(),
    )
    rotation.members.create(user=owner, order=0)
    page = new_page(owner)
    page.goto("/account/")
    page.get_by_role("combobox", name="Display time zone").fill("America/New_York")
    page.get_by_role("button", name="Save the time zone").click()
    expect(page.locator(".message")).to_contain_text("Saved")
    expect(page.locator("#display-zone")).to_contain_text("Times are in America/New_York")
    assert UserSettings.objects.get(user=owner).display_timezone == "America/New_York"
    screenshot(page, "account")

    page.goto(f"/escalation/rotations/{rotation.id}/")
    first = page.locator("#handoffs li").first
    expect(first).to_contain_text("09:00")
    expect(first).to_contain_text("(Europe/Riga)")
    expect(first).to_contain_text("your time")
    expect(first.locator("time")).to_contain_text(", 09:00 EE")
    screenshot(page, "rotation-handoffs")


def test_browser_zone_is_used_until_one_is_chosen(chromium, site, owner, team):
    context = chromium.new_context(base_url=site, timezone_id="Asia/Tokyo")
    try:
        client = Client()
        client.force_login(owner)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": site}])
        page = context.new_page()
        page.goto("/account/")  # the script learns the zone here...
        page.reload()  # ...and the server uses it from the next page on
        expect(page.locator("#display-zone")).to_contain_text(
            "Times are in Asia/Tokyo (your browser's zone)"
        )
    finally:
        context.close()


def test_a_viewer_meets_a_403_page_that_says_why(new_page, viewer):
    page = new_page(viewer)
    response = page.goto("/checks/new/")
    assert response.status == 403
    expect(page.locator("#error-reason")).to_have_text("Only admins and owners can create checks.")
    assert_fits_horizontally(page, "403")
    screenshot(page, "forbidden")


def test_check_form_shows_the_fields_of_the_kind_and_reads_cron_back(new_page, owner):
    page = new_page(owner)
    page.goto("/checks/new/")
    expression = page.get_by_label("Expression")
    expect(page.get_by_label("Period amount")).to_be_visible()
    expect(expression).to_be_hidden()
    expect(page.get_by_label("Maximum run time amount")).to_be_hidden()  # under Advanced
    page.get_by_label("Schedule", exact=True).select_option("cron")
    expect(page.get_by_label("Period amount")).to_be_hidden()
    expression.fill("0 3 * * 1-5")
    page.locator("#id_timezone").fill("Europe/Riga")
    page.locator("#id_timezone").press("Tab")  # the preview follows on change (or on typing)
    expect(page.locator("[data-preview=reading]")).to_have_text(
        "At 03:00, Monday through Friday (Europe/Riga time)"
    )
    page.get_by_text("Advanced: runs").click()
    expect(page.get_by_label("Maximum run time amount")).to_be_visible()
    assert_fits_horizontally(page, "check form")
    screenshot(page, "check-form-cron")
    assert page.errors == []
