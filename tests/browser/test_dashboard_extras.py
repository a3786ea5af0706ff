"""Issue 15's remaining pieces in a real Chromium: the badges page, cloning a check, incident
notes added in place, a rotation's members ordered by buttons, OnCalendar read back in plain
words, and the duration chart with one run and with many. Every page fits a 390 px phone and a
1280 px desktop in light and dark; screenshots go to test-artifacts/screenshots/extras-*."""

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from apps.checks.models import Check, Run
from apps.clock import database_now
from apps.escalation.models import Rotation
from apps.incidents.models import IncidentEvent
from tests.factories import CheckFactory, MembershipFactory

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


def many_runs(check, count):
    now = database_now()
    Run.objects.bulk_create(
        Run(
            owner=check,
            started_at=now - timedelta(hours=count - i),
            ended_at=now - timedelta(hours=count - i) + timedelta(seconds=0.2 + (i % 7) * 1.7),
            duration=timedelta(seconds=0.2 + (i % 7) * 1.7),
            outcome="failed" if i % 9 == 4 else "succeeded",
        )
        for i in range(count)
    )


def rotation_of(team, *users):
    rotation = Rotation.objects.create(
        team=team,
        name="Primary",
        timezone="Europe/Riga",
        cadence="weekly",
        handoff_time="09:00",
        start_date=(database_now() - timedelta(days=1)).date(),
    )
    for order, user in enumerate(users):
        rotation.members.create(user=user, order=order)
    return rotation


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_every_page_fits_and_renders_in_both_themes(
    new_page, site, owner, member, team, viewport, scheme
):
    check = CheckFactory(
        team=team,
        name="nightly-" + "y" * 60,
        schedule_kind="oncalendar",
        schedule_expression="Mon..Fri 03:00",
        timezone="Europe/Riga",
        tags="backup db " + "z" * 40,
    )
    incident = make_down(site, check)
    IncidentEvent.objects.create(
        incident=incident,
        kind=IncidentEvent.Kind.NOTE,
        at=database_now(),
        detail={"text": "Disk full on db-1; " + "w" * 120, "by": "bob", "by_id": member.id},
    )
    one_run = CheckFactory(team=team, name="one-run")
    http(f"{site}/ping/{one_run.ping_token}/start")
    http(f"{site}/ping/{one_run.ping_token}")
    sweep()  # the sweeper folds pings into runs
    busy = CheckFactory(team=team, name="busy")
    many_runs(busy, 20)
    rotation = rotation_of(team, owner, member)
    page = new_page(owner, viewport=PHONE) if viewport == "phone" else new_page(owner)
    page.emulate_media(color_scheme=scheme)
    pages = {
        "list": "/",
        "check-oncalendar": f"/checks/{check.id}/",
        "check-one-run": f"/checks/{one_run.id}/",
        "check-many-runs": f"/checks/{busy.id}/",
        "clone": f"/checks/new/?from={check.id}",
        "edit": f"/checks/{check.id}/edit/",
        "incidents": "/incidents/",
        "incident-with-note": f"/incidents/{incident.id}/",
        "badges": "/team/badges/",
        "rotation": f"/escalation/rotations/{rotation.id}/",
        "escalation": "/escalation/",
        "silences": "/escalation/silences/",
        "maintenance": "/escalation/maintenance/",
        "channels": "/channels/",
        "api-keys": "/team/api-keys/",
        "team": f"/teams/{team.id}/members/",
        "account": "/account/",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        if name == "incident-with-note":
            expect(page.locator("#incident-timeline li.note")).to_contain_text("Note by bob")
        if name == "check-one-run":
            bar = page.locator("#duration-chart rect").bounding_box()
            plot = page.locator("#duration-chart").bounding_box()
            assert bar["width"] < plot["width"] / 8, (bar, plot)  # a bar, not a block
            expect(page.locator(".chart-tick")).to_have_count(3)
            expect(page.locator("#chart-first")).to_be_visible()
            expect(page.locator("table.runs td[data-label=Duration]").first).to_contain_text(" s")
        if name == "check-many-runs":
            expect(page.locator("#duration-chart rect")).to_have_count(20)
            expect(page.locator("#chart-last")).to_be_visible()
        assert_fits_horizontally(page, f"{name} ({viewport}, {scheme})")
        assert_accessible_basics(page, name)
        screenshot(page, f"extras-{viewport}-{scheme}-{name}")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert (sum(channels) < 150) == (scheme == "dark"), background
    assert page.errors == []


def test_navigation_links_to_badges_and_the_api_docs(new_page, member):
    page = new_page(member)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Badges").click()
    expect(page.locator("main h1")).to_have_text("Badges of Ops")
    expect(page.locator("#badge-all img")).to_be_visible()
    assert page.evaluate("document.querySelector('#badge-all img').naturalWidth") > 0
    page.get_by_role("button", name="Copy the SVG image URL of Every check of Ops").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API docs").click()
    assert page.url.endswith("/api/tocsin/v1/docs/")


def test_clone_opens_a_prefilled_form_and_saves_a_new_check(new_page, owner, team):
    check = CheckFactory(
        team=team, name="db-backup", schedule_kind="cron", schedule_expression="0 3 * * 1-5"
    )
    page = new_page(owner)
    page.goto(f"/checks/{check.id}/")
    page.get_by_role("link", name="Clone").click()
    expect(page.locator("#cloned-from")).to_contain_text("db-backup")
    expect(page.get_by_label("Name")).to_have_value("copy of db-backup")
    expect(page.get_by_label("Expression")).to_have_value("0 3 * * 1-5")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("main h1")).to_have_text("copy of db-backup")
    copy = Check.objects.get(name="copy of db-backup")
    assert copy.id != check.id and str(copy.id) in page.url
    expect(page.locator("#ping-url")).to_contain_text(str(copy.id))
    assert page.errors == []


def test_a_note_joins_the_timeline_without_a_reload(new_page, site, member, team):
    check = CheckFactory(team=team)
    incident = make_down(site, check)
    page = new_page(member, viewport=PHONE)
    page.goto(f"/incidents/{incident.id}/")
    mark_page(page)
    page.get_by_role("button", name="Add note").click()  # empty: refused with the reason
    expect(page.locator("#note-error")).to_contain_text("the note is empty")
    page.get_by_label("Add a note to the timeline").fill("Looking at it <b>now</b>")
    page.get_by_role("button", name="Add note").click()
    note = page.locator("#incident-timeline li.note")
    expect(note).to_contain_text("Note by bob: Looking at it <b>now</b>")
    expect(page.get_by_label("Add a note to the timeline")).to_have_value("")
    expect(page.locator("#note-error")).to_have_count(0)
    assert_same_document(page)
    assert_fits_horizontally(page, "incident with a note")
    screenshot(page, "extras-note-added")
    assert page.errors == []


def test_rotation_members_are_ordered_with_buttons(new_page, owner, member, team):
    carol = MembershipFactory(team=team, user__username="carol").user
    rotation = rotation_of(team, owner, member)
    page = new_page(owner, viewport=PHONE)
    page.goto(f"/escalation/rotations/{rotation.id}/")
    names = page.locator(".member-order .member-name")
    expect(names).to_have_text(["alice", "bob"])
    page.get_by_role("button", name="Move alice later").click()
    expect(names).to_have_text(["bob", "alice"])
    page.get_by_label("Add a team member").select_option(label="carol")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(names).to_have_text(["bob", "alice", "carol"])
    page.get_by_role("button", name="Move carol earlier").click()
    page.get_by_role("button", name="Remove bob from the rotation").click()
    expect(names).to_have_text(["carol", "alice"])
    assert_fits_horizontally(page, "rotation members")
    screenshot(page, "extras-rotation-members")
    page.get_by_role("button", name="Save rotation").click()
    expect(names).to_have_text(["carol", "alice"])
    assert [m.user for m in rotation.members.all()] == [carol, owner]
    assert page.errors == []


def test_oncalendar_is_read_back_in_plain_words(new_page, owner):
    page = new_page(owner)
    page.goto("/checks/new/")
    page.get_by_label("Schedule", exact=True).select_option("oncalendar")
    page.get_by_label("Expression").fill("Sat,Sun 10:30")
    page.locator("#id_timezone").fill("Europe/Riga")
    page.locator("#id_timezone").press("Tab")
    expect(page.locator("[data-preview=reading]")).to_have_text(
        "At 10:30, only on Saturday and Sunday (Europe/Riga time)"
    )
    expect(page.locator("[data-preview=times] li")).to_have_count(5)
    screenshot(page, "extras-oncalendar-reading")
    assert page.errors == []


def test_the_check_page_shows_a_new_run_in_the_chart_live(new_page, site, member, team):
    check = CheckFactory(team=team)
    http(f"{site}/ping/{check.ping_token}/start")
    http(f"{site}/ping/{check.ping_token}")
    sweep()  # the sweeper folds pings into runs
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    expect(page.locator("#duration-chart rect")).to_have_count(1)
    mark_page(page)
    http(f"{site}/ping/{check.ping_token}/start")
    http(f"{site}/ping/{check.ping_token}")
    sweep()
    expect(page.locator("#duration-chart rect")).to_have_count(2)
    assert_same_document(page)
