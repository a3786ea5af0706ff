"""The team's check defaults in real Chromium: an admin finds the page from the members page,
makes a mistake, fixes it, saves; a real ping with ?create=1 then creates a check with those
settings, and a ping beyond the limit is refused and shows up on the page."""

import pytest
from playwright.sync_api import expect

from apps.checks.models import Check, CheckDefaults
from apps.teams.models import Membership
from tests.factories import MembershipFactory

from .conftest import PHONE, screenshot
from .helpers import assert_accessible_basics, assert_fits_horizontally, http

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sets_defaults_and_a_ping_provisions_a_check_with_them(new_page, site, team):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user
    page = new_page(admin)
    page.goto(f"/teams/{team.id}/members/")
    page.get_by_role("link", name="Defaults of auto-provisioned checks").click()
    expect(page.get_by_role("heading", name=f"Check defaults of {team.name}")).to_be_visible()
    assert_accessible_basics(page, "check defaults")

    # A mistake first: a 30-second period is refused next to its field, nothing is saved.
    page.get_by_label("Period amount").fill("30")
    page.get_by_label("Period unit").select_option("seconds")
    page.get_by_role("button", name="Save defaults").click()
    period = page.locator(".field", has=page.locator("#id_period_0"))
    expect(period.locator(".errorlist")).to_have_text("Period must be at least 1 minute.")
    assert CheckDefaults.objects.get(team=team).period.total_seconds() == 86400

    page.get_by_label("Period amount").fill("90")
    page.get_by_label("Grace amount").fill("20")
    page.get_by_label("Grace unit").select_option("seconds")
    page.get_by_label("Tags").fill("auto, imported")
    page.get_by_label("Most checks auto-provisioning may bring the team to").fill("1")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.get_by_text("Check defaults saved.")).to_be_visible()
    screenshot(page, "check-defaults")

    assert http(f"{site}/ping/{team.ping_key}/nightly-import?create=1") == (201, "Created")
    check = Check.objects.get(team=team)
    assert (check.slug, check.tags) == ("nightly-import", "auto imported")
    assert (check.period.total_seconds(), check.grace.total_seconds()) == (90, 20)

    status, text = http(f"{site}/ping/{team.ping_key}/another?create=1")
    assert status == 403 and "limit of 1 checks" in text
    page.reload()
    expect(page.locator("#refused-pings")).to_contain_text("“another”")
    page.set_viewport_size(PHONE)
    assert_fits_horizontally(page, "check defaults on a phone")


def test_a_viewer_sees_the_defaults_without_controls(new_page, team, viewer):
    page = new_page(viewer)
    page.goto(f"/teams/{team.id}/check-defaults/")
    expect(page.get_by_text("Only admins and owners can change these settings.")).to_be_visible()
    expect(page.get_by_role("button", name="Save defaults")).to_have_count(0)
    expect(
        page.get_by_label("Most checks auto-provisioning may bring the team to")
    ).to_be_disabled()
