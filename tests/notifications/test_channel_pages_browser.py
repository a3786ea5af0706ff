"""The channel pages in a real headless Chromium: an admin creates a webhook through the form
(a private address is refused with a clear message first), sends a test notification with the
htmx button and sees the result in place (a second click at once is refused in place), and
the delivery appears in the list; a member sees the page without the controls."""

import pytest
from playwright.sync_api import expect

from apps.notifications.models import Channel, Delivery
from apps.teams.models import Membership
from tests.browser.conftest import screenshot
from tests.factories import MembershipFactory

from .receiver import receiving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_creates_a_webhook_and_sends_a_test_from_the_browser(new_page, team, settings):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user
    page = new_page(admin)
    page.goto("/channels/")
    page.get_by_role("link", name="Webhook (JSON, signed)").click()

    # A private address is refused on save, and nothing is lost from the form.
    settings.OUTBOUND_ALLOW_LOOPBACK = False
    page.get_by_label("Name").fill("ops-hook")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Custom headers").fill("Authorization: Bearer abc")
    page.get_by_role("button", name="Create channel").click()
    expect(page.get_by_text("private, loopback or link-local")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("ops-hook")
    assert not Channel.objects.exists()

    settings.OUTBOUND_ALLOW_LOOPBACK = True
    with receiving() as receiver:
        page.get_by_label("URL").fill(receiver.url("/in"))
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_role("heading", name="ops-hook")).to_be_visible()
        channel = Channel.objects.get(name="ops-hook")
        expect(page.locator("#channel-secret")).to_have_text(channel.secret)

        page.evaluate("window.tocsinMarker = 'same document'")
        page.get_by_role("button", name="Send a test notification").click()
        expect(page.locator("#test-result")).to_contain_text(
            "Test notification delivered (HTTP 200)"
        )
        assert page.evaluate("window.tocsinMarker") == "same document"  # swapped in place
        (request,) = receiver.requests
        assert request.json()["type"] == "test"
        assert request.headers["Authorization"] == "Bearer abc"
        # A second click at once is refused in place: one test per channel every few seconds.
        page.get_by_role("button", name="Send a test notification").click()
        expect(page.locator("#test-result")).to_contain_text("Try again in a few seconds")
        assert len(receiver.requests) == 1
    page.reload()
    expect(page.locator("#deliveries")).to_contain_text("Test notification")
    assert Delivery.objects.get().status == "sent"
    screenshot(page, "channel-detail")
    assert page.errors == []


def test_a_member_sees_the_channel_without_controls(new_page, team):
    member = MembershipFactory(team=team, role=Membership.Role.MEMBER, user__username="bo").user
    channel = Channel.objects.create(
        team=team, name="chat", kind="slack", config={"url": "https://93.184.216.34/x"}
    )
    page = new_page(member)
    page.goto(f"/channels/{channel.id}/")
    expect(page.get_by_role("heading", name="chat")).to_be_visible()
    expect(page.get_by_role("button", name="Send a test notification")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    assert page.errors == []
