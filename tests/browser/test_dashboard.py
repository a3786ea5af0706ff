"""The dashboard in a real headless Chromium against a live server: log in, create a check,
ping it over HTTP and watch its status change without a reload, let it go down and acknowledge
the incident with a click (and with the keyboard), a viewer's view and a direct POST, phone
sized pages, and screenshots of each main page in test-artifacts/screenshots/."""

import re

import pytest
from playwright.sync_api import expect

from apps.checks.models import Check
from apps.clock import database_now
from apps.escalation.models import Silence
from apps.incidents.models import Incident
from apps.incidents.services import acknowledge_incident
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory, TeamFactory

from .conftest import PHONE, screenshot
from .helpers import (
    PASSWORD,
    assert_accessible_basics,
    assert_fits_horizontally,
    assert_same_document,
    http,
    is_page_poll,
    make_down,
    mark_page,
    sweep,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_create_a_check_and_see_it_go_up_without_a_reload(new_page, site, owner):
    page = new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    screenshot(page, "login")

    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username")
    expect(page.get_by_label("Username")).to_have_value("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Checks of Ops")).to_be_visible()
    expect(page.get_by_text("No checks yet.")).to_be_visible()
    screenshot(page, "list-empty")

    page.get_by_role("link", name="New check", exact=True).click()
    expect(page.get_by_role("heading", name="New check for Ops")).to_be_visible()
    screenshot(page, "form")
    # First a submission with mistakes: the errors appear next to their fields.
    # (The name input's maxlength stops an over-long name in the browser itself.)
    assert page.get_by_label("Name").get_attribute("maxlength") == "100"
    page.get_by_label("Period amount").fill("0")
    page.get_by_role("button", name="Create check").click()
    period_field = page.locator("fieldset", has=page.locator("#id_period_0"))
    expect(period_field.locator(".errorlist")).to_have_text("Period must be at least 1 minute.")
    # Names are free (issue 13): an empty name is no mistake and gets no error.
    name_field = page.locator(".field", has=page.locator("#id_name"))
    expect(name_field.locator(".errorlist")).to_have_count(0)
    screenshot(page, "form-errors")
    assert not Check.objects.exists()

    page.get_by_label("Name").fill("Nightly <b>backup</b>")
    page.get_by_label("Environment").fill("production")
    page.get_by_label("Tags").fill("db, nightly")
    page.get_by_label("Description").fill("Dumps the database.")
    page.get_by_label("Period amount").fill("1")
    page.get_by_label("Period unit").select_option("days")
    page.get_by_label("Grace amount").fill("2")
    page.get_by_label("Grace unit").select_option("hours")
    page.get_by_role("button", name="Create check").click()
    expect(page.get_by_role("heading", name="Nightly <b>backup</b>")).to_be_visible()
    check = Check.objects.get()
    ping_url = f"{site}/ping/{check.ping_token}"
    expect(page.locator("#ping-url")).to_have_text(ping_url)
    expect(page.locator("#check-status")).to_contain_text("every 1 day, 2 hours grace")

    page.get_by_role("link", name="Checks", exact=True).click()
    pill = page.locator(f"#check-{check.id} .pill")
    expect(pill).to_have_text("New")
    mark_page(page)

    # The job pings over HTTP; the sweeper turns the check up; the polled partial shows it.
    assert http(ping_url) == (200, "OK")
    sweep()
    expect(pill).to_have_text("Up")
    expect(pill).to_have_attribute("data-status", "up")
    assert_same_document(page)
    expect(page.locator(f"#check-{check.id}")).to_contain_text("#db")
    screenshot(page, "list")
    assert page.errors == []


def test_copy_button_puts_the_ping_url_on_the_clipboard(new_page, site, owner, check):
    page = new_page(owner)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    page.goto(f"/checks/{check.id}/")
    button = page.get_by_role("button", name="Copy the ping URL")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_text("Copied")
    expect(page.locator("#live-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == f"{site}/ping/{check.ping_token}"
    page.get_by_role("tab", name="Wrapper script").click()  # the snippets are tabs
    page.get_by_role("button", name="Copy the wrapper script").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("#!/bin/sh\n") and copied.endswith('exit "$status"')
    expect(button).to_have_text("Copy")


def test_copy_button_falls_back_when_the_clipboard_api_is_missing(new_page, site, owner, check):
    # Plain-http deployments on a LAN address are not a secure context: no navigator.clipboard.
    page = new_page(owner)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    page.add_init_script(
        "window.realClipboard = navigator.clipboard;"
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});"
    )
    page.goto(f"/checks/{check.id}/")
    assert page.evaluate("navigator.clipboard") is None
    page.get_by_role("button", name="Copy the ping URL").click()
    expect(page.get_by_role("button", name="Copy the ping URL")).to_have_text("Copied")
    copied = page.evaluate("window.realClipboard.readText()")
    assert copied == f"{site}/ping/{check.ping_token}"


def test_go_down_and_acknowledge_the_incident_with_a_click(new_page, site, team, member):
    check = CheckFactory(team=team, name="nightly-backup")
    page = new_page(member)
    page.goto("/")
    expect(page.locator(f"#check-{check.id} .pill")).to_have_text("New")
    mark_page(page)
    incident = make_down(site, check)
    # The list follows without a reload: up, then down.
    expect(page.locator(f"#check-{check.id} .pill")).to_have_text("Down")
    assert_same_document(page)

    page.get_by_role("link", name="nightly-backup").click()
    row = page.locator(f"#incident-{incident.id}")
    expect(row.locator(".pill")).to_have_text("Triggered")
    expect(page.locator("#check-status .status-line .pill")).to_have_text("Down")
    expect(page.locator("tr", has_text="Fail (exit")).to_have_count(0)
    expect(page.get_by_text("error: disk full", exact=False)).to_be_hidden()  # body collapsed
    page.locator("#ping-2 summary").click()
    expect(page.locator("#ping-2 pre")).to_contain_text("error: disk full")
    screenshot(page, "check-down")

    mark_page(page)
    page.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".pill")).to_have_text("Acknowledged")
    expect(row).to_contain_text("by bob")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    # The row was replaced in place: same document, and the focus moved to Resolve.
    assert_same_document(page)
    expect(page.get_by_role("button", name="Resolve")).to_be_focused()
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    assert incident.acknowledged_by == member

    page.get_by_role("link", name="Failure signal").click()
    expect(page.get_by_role("heading", name=re.compile("Failure signal on"))).to_be_visible()
    expect(page.get_by_text("Acknowledged", exact=False).first).to_be_visible()
    screenshot(page, "incident")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator(f"#incident-{incident.id} .pill")).to_have_text("Resolved")
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert page.errors == []


def test_incident_buttons_are_reachable_and_usable_with_the_keyboard(new_page, site, team, member):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    target = f"acknowledge-{incident.id}"
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == target:
            break
    else:
        pytest.fail("Tab never reached the Acknowledge button")
    # The focus ring is visible (not suppressed by the stylesheet).
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    expect(page.locator(f"#incident-{incident.id} .pill")).to_have_text("Acknowledged")
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    # From Resolve (focused after the swap), on to the silence buttons.
    expect(page.get_by_role("button", name="Resolve")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Silence 1h")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(f"#silenced-{incident.id}")).to_contain_text("silenced until")
    assert Silence.objects.get().matchers == {"check_ids": [str(check.id)]}


def test_tampered_silence_duration_is_reported_on_the_page(new_page, site, team, member):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/incidents/{incident.id}/")
    page.locator(f"#silence-1h-{incident.id}").evaluate("b => b.value = '99h'")
    page.get_by_role("button", name="Silence 1h").click()
    expect(page.locator("#request-problem")).to_have_text(
        "That request failed: Nothing was silenced: choose 1h, 4h or 24h."
    )
    assert not Silence.objects.exists()


def test_acting_on_an_incident_someone_else_acknowledged_shows_why(
    new_page, site, team, member, owner
):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    acknowledge_incident(incident_id=incident.id, user=owner, now=database_now())
    page.get_by_role("button", name="Acknowledge").click()
    row = page.locator(f"#incident-{incident.id}")
    expect(row.get_by_role("alert")).to_have_text("This incident is already acknowledged.")
    expect(row.locator(".pill")).to_have_text("Acknowledged")
    expect(row).to_contain_text("by alice")


def test_refused_action_is_reported_on_the_page(new_page, site, team, member):
    # The member is demoted to viewer while the page is open: the server refuses, and says so.
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    Membership.objects.filter(user=member).update(role=Membership.Role.VIEWER)
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#request-problem")).to_have_text(
        "That request failed: You are not allowed to do that. This needs the member role or higher."
    )
    expect(page.locator(f"#incident-{incident.id} .pill")).to_have_text("Triggered")
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_stale_csrf_token_is_reported_as_an_out_of_date_page(new_page, site, team, member):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(member)
    page.goto(f"/checks/{check.id}/")
    page.context.clear_cookies(name="csrftoken")  # as if the token rotated elsewhere
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#request-problem")).to_contain_text("This page is out of date")
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_viewer_sees_no_action_buttons_and_a_direct_post_is_refused(
    new_page, site, team, viewer, member
):
    check = CheckFactory(team=team, name="nightly-backup")
    incident = make_down(site, check)
    page = new_page(viewer)
    page.goto(f"/checks/{check.id}/")
    expect(page.locator(f"#incident-{incident.id} .pill")).to_have_text("Triggered")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Silence"))).to_have_count(0)
    expect(page.get_by_role("link", name="New check")).to_have_count(0)
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)

    # With the viewer's own session and a valid CSRF token, the server still refuses.
    token = re.search(r'"x-csrftoken": "(\w+)"', page.locator("body").get_attribute("hx-headers"))
    for action in ("acknowledge", "resolve"):
        response = page.request.post(
            f"{site}/incidents/{incident.id}/{action}/",
            headers={"X-CSRFToken": token.group(1), "HX-Request": "true"},
        )
        assert response.status == 403
        assert "CSRF" not in response.text()
    response = page.request.post(
        f"{site}/incidents/{incident.id}/silence/",
        headers={"X-CSRFToken": token.group(1), "HX-Request": "true"},
        form={"duration": "24h"},
    )
    assert response.status == 403
    assert not Silence.objects.exists()
    response = page.request.post(
        f"{site}/checks/new/",
        form={"name": "sneaky", "csrfmiddlewaretoken": token.group(1)},
    )
    assert response.status == 403
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED
    assert not Check.objects.filter(name="sneaky").exists()


def test_polling_keeps_the_keyboard_focus_on_the_same_link(new_page, site, owner, check):
    page = new_page(owner)
    page.goto("/")
    link = page.locator(f"#check-link-{check.id}")
    link.focus()
    with page.expect_response(is_page_poll):
        pass
    with page.expect_response(is_page_poll):
        pass  # the second poll's swap has certainly settled the first one
    expect(link).to_be_focused()


def test_app_serves_htmx_itself_and_loads_nothing_from_elsewhere(new_page, site, owner, check):
    page = new_page(owner)
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"/checks/{check.id}/")
    expect(page.locator("#check-status")).to_be_visible()
    assert page.evaluate("typeof htmx") == "object"
    assert page.evaluate("htmx.version").startswith("2.")
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert any("htmx" in src for src in scripts)
    for src in scripts:
        response = page.request.get(src)
        assert response.status == 200, src
    assert requested and all(url.startswith(site) for url in requested), requested


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_main_pages_fit_the_screen(new_page, site, owner, team, viewport):
    # Worst cases for width: a long unbroken name, tags and environment, a long log line, and
    # a user in two teams (the switcher sits in the top bar).
    platform = TeamFactory(name="Platform engineering", slug="platform")
    MembershipFactory(team=platform, user=owner, role=Membership.Role.VIEWER)
    long_name = "nightly-" + "x" * 92
    check = CheckFactory(team=team, name=long_name, slug="long", tags="a" * 50 + " b")
    CheckFactory(team=team, name="Weekly report", slug="weekly")
    body = ("E" * 3000 + " error: disk full\n").encode()
    assert http(f"{site}/ping/{check.ping_token}/3", body) == (200, "OK")
    sweep()
    incident = Incident.objects.get(owner=check)

    page = new_page(None, viewport=PHONE) if viewport == "phone" else new_page()
    page.goto("/login/")
    assert_fits_horizontally(page, "login")
    assert_accessible_basics(page, "login")
    screenshot(page, f"{viewport}-login")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Checks of Ops")).to_be_visible()
    expect(page.get_by_label("Team", exact=True)).to_be_visible()
    assert_fits_horizontally(page, "list")
    assert_accessible_basics(page, "list")
    screenshot(page, f"{viewport}-list")

    page.goto("/checks/new/")
    assert_fits_horizontally(page, "form")
    # An empty name is valid (free names): a period of 0 is the mistake that shows errors.
    page.get_by_label("Period amount").fill("0")
    page.get_by_role("button", name="Create check").click()
    expect(page.locator(".errorlist").first).to_be_visible()
    assert_fits_horizontally(page, "form with errors")
    assert_accessible_basics(page, "form")
    screenshot(page, f"{viewport}-form")

    page.goto(f"/checks/{check.id}/")
    page.locator("#ping-1 summary").click()
    expect(page.locator("#ping-1 pre")).to_contain_text("error: disk full")
    assert_fits_horizontally(page, "check page")
    assert_accessible_basics(page, "check page")
    screenshot(page, f"{viewport}-check")

    page.goto(f"/incidents/{incident.id}/")
    expect(page.get_by_role("button", name="Acknowledge")).to_be_visible()
    assert_fits_horizontally(page, "incident page")
    assert_accessible_basics(page, "incident page")
    screenshot(page, f"{viewport}-incident")


def test_switching_team_in_the_browser(new_page, site, owner, check):
    platform = TeamFactory(name="Platform", slug="platform")
    MembershipFactory(team=platform, user=owner, role=Membership.Role.MEMBER)
    CheckFactory(team=platform, name="platform-job")
    page = new_page(owner)
    page.goto("/")
    expect(page.get_by_role("link", name="nightly-backup")).to_be_visible()
    page.get_by_label("Team", exact=True).select_option(label="Platform (member)")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("heading", name="Checks of Platform")).to_be_visible()
    expect(page.get_by_role("link", name="platform-job")).to_be_visible()
    expect(page.get_by_role("link", name="nightly-backup")).to_have_count(0)


def test_log_out_with_the_button(new_page, site, owner):
    page = new_page(owner)
    page.goto("/")
    page.get_by_role("button", name="Log out alice").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))


WATCH_LIVE_REGION = """
window.liveChanges = [];
const live = document.getElementById('live-status');
new MutationObserver(() => window.liveChanges.push(live.textContent))
  .observe(live, {childList: true, characterData: true, subtree: true});
// The page's own polls (not the sweeper banner's) from when they are sent until they settle,
// after tocsin.js (whose listener came first) announced what changed. htmx hands the same
// details object to every event of one request.
window.pollsSent = 0;
window.pollsUnsettled = new Set();
const isPagePoll = (event) => !event.detail.pathInfo.requestPath.includes('/sweeper-banner/');
document.addEventListener('htmx:beforeSend', (event) => {
  if (isPagePoll(event)) { window.pollsSent++; window.pollsUnsettled.add(event.detail); }
});
document.addEventListener('htmx:afterSettle', (event) => {
  window.pollsUnsettled.delete(event.detail);
});
"""
# Every poll sent so far has settled (and so been announced, if it changed anything).
POLLS_SETTLED = "window.pollsSent > 0 && window.pollsUnsettled.size === 0"


def hx_poll(page):
    return page.expect_response(is_page_poll)


@pytest.mark.parametrize("where", ["list", "check"])
def test_status_changes_are_announced_once_and_quiet_polls_say_nothing(
    new_page, site, owner, check, where
):
    page = new_page(owner)
    page.goto("/" if where == "list" else f"/checks/{check.id}/")
    # The polled region is not itself live (a screen reader would re-read it every 5 s); the
    # one polite live region is the short summary.
    region = page.locator("#check-table" if where == "list" else "#check-status")
    assert region.get_attribute("aria-live") is None
    assert page.locator("[aria-live]").count() == 1
    expect(page.locator("#live-status")).to_have_attribute("aria-live", "polite")
    page.evaluate(WATCH_LIVE_REGION)
    for _ in range(2):
        with hx_poll(page):
            pass
    page.wait_for_function(POLLS_SETTLED)
    assert page.evaluate("window.liveChanges") == []

    make_down(site, check)
    expected = (
        "Checks: 1 down (nightly-backup)."
        if where == "list"
        else "nightly-backup is down, with 1 open incident."
    )
    expect(page.locator("#live-status")).to_have_text(expected)
    for _ in range(2):
        with hx_poll(page):
            pass
    page.wait_for_function(POLLS_SETTLED)
    # Up (from the first ping), then down; each said once, and nothing on the quiet polls.
    changes = [c for c in page.evaluate("window.liveChanges") if not c.startswith("The sweeper")]
    assert changes[-1] == expected and changes.count(expected) == 1, changes


def test_sweeper_banner_goes_away_without_a_reload_when_the_sweeper_runs(new_page, owner):
    page = new_page(owner)
    page.goto("/")
    expect(page.locator("#sweeper-late")).to_contain_text("The sweeper is late")
    mark_page(page)
    sweep()
    # The banner polls every 15 s.
    expect(page.locator("#sweeper-late")).to_have_count(0, timeout=25_000)
    expect(page.locator("#live-status")).to_have_text("The sweeper is running.")
    assert_same_document(page)
