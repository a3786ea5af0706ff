"""A PagerDuty channel made in a real headless Chromium: the integration key is typed into a
password field, a malformed key is refused first, the key never appears on the channel's page
or in the edit form, and "Send a test notification" reaches the fake Events API in place."""

import pytest
from playwright.sync_api import expect

from apps.notifications.models import Channel
from apps.teams.models import Membership
from tests.factories import MembershipFactory

from .providers import ROUTING_KEY, point_providers_at
from .receiver import receiving

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sets_up_pagerduty_and_sends_a_test_from_the_browser(new_page, team, settings):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    with receiving() as events_api:
        events_api.script = [202]
        point_providers_at(settings, events_api)
        page = new_page(admin)
        page.goto("/channels/")
        page.get_by_role("link", name="PagerDuty (Events API v2)").click()

        page.get_by_label("Name").fill("on-call")
        key_field = page.get_by_label("Integration key")
        assert key_field.get_attribute("type") == "password"
        key_field.fill("not-a-key")
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_text("An integration key is 32 letters and digits.")).to_be_visible()
        assert ROUTING_KEY not in page.content()
        assert not Channel.objects.exists()

        page.get_by_label("Integration key").fill(ROUTING_KEY)
        page.get_by_role("button", name="Create channel").click()
        expect(page.get_by_role("heading", name="on-call")).to_be_visible()
        expect(page.get_by_text("Integration key: stored, never shown again")).to_be_visible()
        assert ROUTING_KEY not in page.content()

        page.get_by_role("button", name="Send a test notification").click()
        expect(page.locator("#test-result")).to_contain_text(
            "Test notification delivered (HTTP 202)"
        )
        trigger, resolve = (request.json() for request in events_api.requests)
        assert trigger["routing_key"] == ROUTING_KEY
        assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")

        page.get_by_role("link", name="Edit").click()
        expect(page.get_by_label("Integration key")).to_have_value("")
        assert ROUTING_KEY not in page.content()
        assert page.errors == []
