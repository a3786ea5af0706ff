"""The escalation pages in real headless Chromium: the silence form's live preview, creating and
expiring a silence, and adding and reordering policy steps without a reload (htmx)."""

import pytest
from playwright.sync_api import expect

from apps.escalation.models import Silence
from tests.escalation.helpers import make_channel, make_policy
from tests.factories import CheckFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_silence_preview_create_and_expire(new_page, owner, team):
    CheckFactory(team=team, name="db-health", slug="db-health", tags="db")
    CheckFactory(team=team, name="nightly-report", slug="nightly-report", tags="reports")
    page = new_page(owner)
    page.goto("/escalation/silences/")
    expect(page.get_by_role("heading", name="Silences of Ops")).to_be_visible()
    preview = page.locator("#silence-preview")
    expect(preview).to_contain_text("Matches no check")

    page.get_by_label("Tags").fill("db")
    expect(preview).to_contain_text("Would silence 1 check")
    expect(preview).to_contain_text("db-health")
    expect(preview).not_to_contain_text("nightly-report")
    page.get_by_label("The whole team").check()
    expect(preview).to_contain_text("Would silence 2 checks")
    page.get_by_label("The whole team").uncheck()

    page.get_by_role("button", name="Silence").click()  # no comment, no end: refused
    expect(page.get_by_text("A comment is required: say why.")).to_be_visible()
    expect(page.get_by_text("Give an end time or a duration.")).to_be_visible()
    assert not Silence.objects.exists()

    page.get_by_label("Comment").fill("migrating the db")
    page.get_by_label("Or for amount").fill("2")
    page.get_by_label("Or for unit").select_option("hours")
    page.get_by_role("button", name="Silence").click()
    expect(page.get_by_text("Silence saved.")).to_be_visible()
    expect(page.locator("#silenced-now")).to_contain_text("db-health")
    silence = Silence.objects.get()
    expect(page.locator(f"#silence-{silence.id}")).to_contain_text("migrating the db")

    page.locator(f"#silence-{silence.id}").get_by_role("button", name="Expire now").click()
    expect(page.get_by_text("Silence expired")).to_be_visible()
    expect(page.locator("#silenced-now")).to_have_text("Nothing.")
    silence.refresh_from_db()
    assert silence.expired_by == owner


def test_policy_steps_are_added_and_moved_without_a_reload(new_page, owner, member, team):
    policy = make_policy(team, [(10, [("user", owner.id)])])
    make_channel(team, name="ops-chat")
    page = new_page(owner)
    page.goto(f"/escalation/policies/{policy.id}/")
    page.evaluate("window.tocsinMarker = 'same document'")
    steps = page.locator("#steps ol > li")
    expect(steps).to_have_count(1)

    page.get_by_role("button", name="Add step").click()  # no target chosen: refused in place
    expect(page.locator("#steps")).to_contain_text("Choose at least one target.")
    page.get_by_label("Channel ops-chat").check()
    page.get_by_label("Then wait amount").fill("5")
    page.get_by_role("button", name="Add step").click()
    expect(steps).to_have_count(2)
    expect(steps.nth(1)).to_contain_text("Channel ops-chat; then wait 5 minutes")

    page.get_by_role("button", name="Move step 2 up").click()
    expect(steps.nth(0)).to_contain_text("Channel ops-chat")
    expect(steps.nth(1)).to_contain_text("Member alice")
    assert page.evaluate("window.tocsinMarker") == "same document"
    assert [s.targets[0]["kind"] for s in policy.steps.all()] == ["channel", "user"]
