"""Monitor the monitor: every signed-in page shows a banner when the sweeper is late (or never
ran), and the banner polls itself so a page left open follows without a reload."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.checks.models import SweepRun
from apps.clock import database_now

BANNER = reverse("dashboard:sweeper-banner")
HTMX = {"HTTP_HX_REQUEST": "true"}
PAGES = ["dashboard:check-list", "dashboard:incident-list", "escalation:silence-list"]


def swept_ago(seconds: float) -> None:
    SweepRun.objects.create(
        started_at=database_now() - timedelta(seconds=seconds), duration_ms=3, examined=0, changed=0
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_banner_when_the_sweeper_never_ran(member, page):
    response = signed_in(member).get(reverse(page))
    assertContains(response, 'id="sweeper-late"')
    assertContains(response, "The sweeper is late (it has never run)")
    assertContains(response, f'hx-get="{BANNER}" hx-trigger="every 15s')


@pytest.mark.parametrize("page", PAGES)
def test_banner_when_the_last_sweep_is_older_than_three_intervals(member, settings, page):
    settings.SWEEP_INTERVAL = 5.0
    swept_ago(60)
    response = signed_in(member).get(reverse(page))
    assertContains(response, "The sweeper is late (last sweep 60 s ago)")


def test_no_banner_after_a_recent_sweep_but_the_region_still_polls(member, settings):
    settings.SWEEP_INTERVAL = 5.0
    swept_ago(1)
    response = signed_in(member).get(reverse("dashboard:check-list"))
    assertNotContains(response, 'id="sweeper-late"')
    assertContains(response, 'data-status-summary="The sweeper is running."')
    assertContains(response, f'hx-get="{BANNER}"')


def test_polled_banner_follows_the_sweeper(member, settings):
    settings.SWEEP_INTERVAL = 5.0
    client = signed_in(member)
    late = client.get(BANNER, **HTMX).content.decode().strip()
    assert late.startswith('<div id="sweeper-banner"') and "<html" not in late
    assert 'id="sweeper-late"' in late
    assert "The sweeper is late: missed check-ins are not being detected" in late
    swept_ago(0)
    running = client.get(BANNER, **HTMX).content.decode()
    assert 'id="sweeper-late"' not in running
    assert 'data-status-summary="The sweeper is running."' in running


def test_anonymous_pages_show_no_banner_and_the_poll_needs_a_login(client, db):
    assertNotContains(client.get(reverse("login")), "sweeper-banner")
    response = client.get(BANNER)
    assert response.status_code == 302 and "/login/" in response.url


def test_banner_when_due_notifications_are_not_going_out(member, team, settings):
    from apps.notifications.models import Delivery

    settings.SWEEP_INTERVAL = 5.0
    swept_ago(1)
    client = signed_in(member)
    assertNotContains(client.get(BANNER, **HTMX), 'id="deliveries-stuck"')

    due = database_now() - timedelta(minutes=25)
    Delivery.objects.create(
        team=team,
        target="channel:1",
        summary="DOWN nightly",
        created_at=due,
        updated_at=due,
        next_attempt_at=due,
    )
    for response in (client.get(BANNER, **HTMX), client.get(reverse("dashboard:check-list"))):
        assertContains(response, 'id="deliveries-stuck"')
        assertContains(response, "the oldest one due has waited 25 minutes")
        assertNotContains(response, 'id="sweeper-late"')  # the sweeper itself is fine
