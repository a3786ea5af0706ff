"""More of the dashboard in real Chromium: sign up and run a check through its whole life
(create, ping over HTTP, go up, go down as time passes, acknowledge from the incident list),
filters that survive polling and the back button, the check's controls, invitations, and a
viewer who finds no edit controls and is refused when posting directly. Screenshots go to
test-artifacts/screenshots/ (the path is printed); the main pages are also tried at a phone's
size."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from playwright.sync_api import expect

from apps.api.keys import create_api_key
from apps.api.models import ApiKey
from apps.checks.models import Check
from apps.clock import database_now
from apps.escalation.actions import silence_incident_check
from apps.escalation.models import EscalationPolicy, Silence
from apps.incidents.models import Incident
from apps.teams.models import Membership
from tests.escalation.helpers import make_policy
from tests.factories import CheckFactory

from .conftest import PHONE, screenshot
from .helpers import (
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
NEW_PASSWORD = "a long enough passphrase"
# The first password field, not its confirmation (labels end in "(required)").
FIRST_PASSWORD = re.compile(r"^Password(?! confirmation)")


def hx_response(page):
    """Wait for the next htmx request's response (a poll or an action)."""
    return page.expect_response(is_page_poll)


def test_sign_up_create_ping_go_down_and_acknowledge(new_page, site):
    page = new_page()
    page.goto("/login/")
    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    assert_accessible_basics(page, "sign up")
    # A mistake first: nothing is created and the error sits next to its field.
    page.get_by_label("Team name").fill("Night Shift")
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label(FIRST_PASSWORD).fill(NEW_PASSWORD)
    page.get_by_label("Password confirmation").fill("something else")
    page.get_by_role("button", name="Create account and team").click()
    expect(page.locator("#id_password2_error")).to_contain_text("match")
    screenshot(page, "signup-errors")
    assert not get_user_model().objects.filter(username="dana").exists()
    page.get_by_label(FIRST_PASSWORD).fill(NEW_PASSWORD)
    page.get_by_label("Password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create account and team").click()
    expect(page.get_by_role("heading", name="Checks of Night Shift")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="You own the team")).to_be_visible()

    # Create a check with a one-hour period and a short grace.
    page.get_by_role("link", name="New check", exact=True).click()
    page.get_by_label("Name").fill("hourly-sync")
    page.get_by_label("Period amount").fill("1")
    page.get_by_label("Period unit").select_option("hours")
    page.get_by_label("Grace amount").fill("5")
    page.get_by_label("Grace unit").select_option("minutes")
    page.get_by_role("button", name="Create check").click()
    expect(page.get_by_role("heading", name="hourly-sync")).to_be_visible()
    check = Check.objects.get(name="hourly-sync")
    assert check.team.memberships.get().role == Membership.Role.OWNER

    # Ping it over HTTP; the open list follows without a reload.
    page.get_by_role("link", name="Checks", exact=True).click()
    pill = page.locator(f"#check-{check.id} .pill")
    expect(pill).to_have_text("New")
    mark_page(page)
    assert http(f"{site}/ping/{check.ping_token}") == (200, "OK")
    sweep()
    expect(pill).to_have_text("Up")

    # Time passes with no ping: one sweep 2 hours later finds it late then down.
    sweep(now=database_now() + timedelta(hours=2))
    expect(pill).to_have_text("Down")
    expect(page.locator("#count-down")).to_contain_text("1")
    assert_same_document(page)
    screenshot(page, "list-down")

    # Acknowledge from the incident list with a click: the row changes in place.
    page.get_by_role("link", name="Incidents", exact=True).click()
    incident = Incident.objects.get(owner=check)
    row = page.locator(f"#incident-{incident.id}")
    expect(row.locator(".pill")).to_have_text("Triggered")
    expect(row).to_contain_text("hourly-sync")
    screenshot(page, "incidents-open")
    mark_page(page)
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".pill")).to_have_text("Acknowledged")
    expect(row).to_contain_text("by dana")
    assert_same_document(page)
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    page.get_by_role("link", name=re.compile(r"^Acknowledged")).click()
    expect(page.locator(f"#incident-{incident.id}")).to_be_visible()
    page.get_by_role("link", name="Missed heartbeat").click()
    timeline = page.locator("#incident-timeline")
    expect(timeline.locator('li[data-kind="opened"]')).to_have_count(1)
    expect(timeline.locator('li[data-kind="acknowledged"]')).to_have_count(1)
    screenshot(page, "incident-timeline")

    # Silence the check from the incident page: the row says so in place, the polled timeline
    # and the screen reader's summary follow, and the silences page lists it.
    mark_page(page)
    row = page.locator(f"#incident-{incident.id}")
    row.get_by_role("button", name="Silence 4h").click()
    expect(row.locator('[data-hold="silenced"]')).to_contain_text("silenced until")
    expect(row.get_by_role("button", name="Silence 4h")).to_be_focused()
    silence = Silence.objects.get()
    assert silence.matchers == {"check_ids": [str(check.id)]}
    assert silence.ends_at - silence.starts_at == timedelta(hours=4)
    expect(timeline.locator('li[data-kind="silenced"]')).to_contain_text(f"silence #{silence.id}")
    expect(page.locator("#check-silenced")).to_contain_text("The check is silenced until")
    expect(page.locator("#live-status")).to_have_text(
        re.compile(
            r"^Incident acknowledged by dana; check silenced until "
            r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC\.$"
        )
    )
    assert_same_document(page)
    screenshot(page, "incident-silenced")
    row.get_by_role("link", name="silences").click()
    expect(page.get_by_role("heading", name="Silences of Night Shift")).to_be_visible()
    expect(page.locator(f"#silence-{silence.id}")).to_contain_text("Silenced for 4 h")
    expect(page.locator("#silenced-now")).to_contain_text("hourly-sync")
    screenshot(page, "silences")

    # Edit a policy: create it, then add, reorder and remove steps in place.
    page.get_by_role("link", name="Escalation", exact=True).click()
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Name").fill("Night rota")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_role("heading", name="Escalation policy Night rota")).to_be_visible()
    mark_page(page)
    steps = page.locator("#steps ol > li")
    expect(steps).to_have_count(0)
    page.get_by_label("Member dana").check()
    page.get_by_label("Then wait amount").fill("10")
    page.get_by_role("button", name="Add step").click()
    expect(steps).to_have_count(1)
    page.get_by_label("Everyone on the team").check()
    page.get_by_label("Then wait amount").fill("30")
    page.get_by_role("button", name="Add step").click()
    expect(steps).to_have_count(2)
    expect(steps.nth(1)).to_contain_text("Everyone on the team; then wait 30 minutes")
    page.get_by_role("button", name="Move step 2 up").click()
    expect(steps.nth(0)).to_contain_text("Everyone on the team")
    expect(steps.nth(1)).to_contain_text("Member dana")
    page.get_by_role("button", name="Remove step 2").click()
    expect(steps).to_have_count(1)
    expect(steps.nth(0)).to_contain_text("Everyone on the team")
    assert_same_document(page)
    policy = EscalationPolicy.objects.get(name="Night rota")
    assert [s.targets[0]["kind"] for s in policy.steps.all()] == ["team"]
    screenshot(page, "policy")
    assert page.errors == []


def test_filters_survive_polling_and_the_back_button(new_page, site, owner, team):
    backup = CheckFactory(team=team, name="db-backup", tags="db", status="down")
    CheckFactory(team=team, name="mailer", tags="mail", status="up")
    vacuum = CheckFactory(team=team, name="db-vacuum", tags="db", status="up")
    page = new_page(owner)
    page.goto("/")
    expect(page.locator("table.checks tbody tr")).to_have_count(3)
    mark_page(page)
    page.get_by_label("Tag").select_option("db")
    expect(page.locator("table.checks tbody tr")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"tag=db"))
    page.get_by_label("Search by name").fill("vac")
    expect(page.locator("table.checks tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=vac"))
    assert_same_document(page)

    # A poll refreshes the filtered table: the status change shows, the filter holds.
    Check.objects.filter(id=vacuum.id).update(status="late")
    with hx_response(page) as poll:
        pass
    assert "tag=db" in poll.value.url and "q=vac" in poll.value.url
    expect(page.locator(f"#check-{vacuum.id} .pill")).to_have_text("Late")
    expect(page.locator("table.checks tbody tr")).to_have_count(1)
    expect(page.locator(f"#check-{backup.id}")).to_have_count(0)
    screenshot(page, "list-filtered")

    # The filtered URL is a link: opened afresh it shows the same list and form.
    fresh = new_page(owner)
    fresh.goto(page.url)
    expect(fresh.locator("table.checks tbody tr")).to_have_count(1)
    expect(fresh.get_by_label("Search by name")).to_have_value("vac")

    # Back: the list without the search, then without any filter.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"q=vac"))
    expect(page.locator("table.checks tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Clear").click()
    expect(page.locator("table.checks tbody tr")).to_have_count(3)
    assert page.errors == []


def test_admin_pauses_resumes_regenerates_and_deletes_a_check(new_page, site, owner, check):
    page = new_page(owner)
    page.goto(f"/checks/{check.id}/")
    mark_page(page)
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#check-status .status-line .pill").first).to_have_text("Paused")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    assert_same_document(page)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#check-status .status-line .pill").first).to_have_text("New")
    check.refresh_from_db()
    assert check.status == Check.Status.NEW

    old_url = page.locator("#ping-url").inner_text()
    page.get_by_text("New ping URL…").click()
    page.get_by_role("button", name="Make a new ping URL").click()
    expect(page.get_by_role("alert").filter(has_text="new ping URL")).to_be_visible()
    expect(page.locator("#ping-url")).not_to_have_text(old_url)
    assert http(old_url)[0] == 404
    assert http(page.locator("#ping-url").inner_text()) == (200, "OK")
    # The ping URL's UUID is the check's id: the check moved, and the page with it.
    moved = Check.objects.get(team_id=check.team_id, name=check.name)
    assert moved.id != check.id and str(moved.id) in page.url
    check = moved

    page.get_by_text("Delete this check…").click()
    page.get_by_label(re.compile("Type the check's name")).fill("wrong name")
    page.get_by_role("button", name="Delete the check").click()
    expect(page.get_by_role("alert").filter(has_text="Nothing was deleted")).to_be_visible()
    assert Check.objects.filter(id=check.id).exists()
    page.get_by_text("Delete this check…").click()
    page.get_by_label(re.compile("Type the check's name")).fill(check.name)
    screenshot(page, "check-delete-confirm")
    page.get_by_role("button", name="Delete the check").click()
    expect(page.get_by_role("heading", name="Checks of Ops")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="Deleted the check")).to_be_visible()
    assert not Check.objects.filter(id=check.id).exists()
    assert page.errors == []


def test_invited_viewer_joins_finds_no_edit_controls_and_is_refused(
    new_page, site, owner, team, check
):
    incident = make_down(site, check)
    page = new_page(owner)
    page.goto("/")
    page.get_by_role("link", name="Team", exact=True).click()
    expect(page.get_by_role("heading", name="Members of Ops")).to_be_visible()
    page.get_by_label("Email address").fill("vic@example.com")
    page.get_by_label(re.compile(r"^Role \(required\)")).select_option("viewer")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("alert").filter(has_text="Invitation sent")).to_be_visible()
    expect(page.locator(".invitations")).to_contain_text("vic@example.com as viewer")
    screenshot(page, "members")
    assert len(mail.outbox) == 1
    link = re.search(r"(/invitations/\S+/)", mail.outbox[0].body).group(1)

    guest = new_page()
    guest.goto(link)
    expect(guest.get_by_text("You are invited to join")).to_contain_text("Ops")
    screenshot(guest, "invitation")
    guest.get_by_label("Username").fill("vic")
    guest.get_by_label(FIRST_PASSWORD).fill(NEW_PASSWORD)
    guest.get_by_label("Password confirmation").fill(NEW_PASSWORD)
    guest.get_by_role("button", name="Create account and join").click()
    expect(guest.get_by_role("heading", name="Checks of Ops")).to_be_visible()
    vic = get_user_model().objects.get(username="vic")
    assert Membership.objects.get(user=vic, team=team).role == Membership.Role.VIEWER

    # The viewer sees the team's checks and incidents but no edit control anywhere.
    expect(guest.get_by_role("link", name="New check")).to_have_count(0)
    guest.get_by_role("link", name=check.name).click()
    names = ("Pause", "Resume", "Acknowledge", "Resolve", "Silence 1h", "Make a new ping URL")
    for name in names:
        expect(guest.get_by_role("button", name=name)).to_have_count(0)
    expect(guest.get_by_text("Delete this check…")).to_have_count(0)
    guest.goto("/incidents/")
    expect(guest.locator(f"#incident-{incident.id}")).to_be_visible()
    expect(guest.get_by_role("button", name="Acknowledge")).to_have_count(0)
    guest.goto(f"/teams/{team.id}/members/")
    expect(guest.get_by_role("button", name="Send invitation")).to_have_count(0)

    # Posting directly with the viewer's own session and CSRF token is refused.
    token = re.search(r'"x-csrftoken": "(\w+)"', guest.locator("body").get_attribute("hx-headers"))
    headers = {"X-CSRFToken": token.group(1)}
    owner_membership = Membership.objects.get(user=owner, team=team)
    refused = [
        f"/checks/{check.id}/pause/",
        f"/checks/{check.id}/regenerate/",
        f"/checks/{check.id}/delete/",
        f"/incidents/{incident.id}/acknowledge/",
        f"/incidents/{incident.id}/silence/",
        "/team/api-keys/",
        f"/teams/{team.id}/members/{owner_membership.id}/role/",
        f"/teams/{team.id}/invitations/",
    ]
    for path in refused:
        response = guest.request.post(
            f"{site}{path}",
            headers=headers,
            form={
                "confirm_name": check.name,
                "role": "viewer",
                "email": "x@example.com",
                "duration": "1h",
                "name": "sneaky",
            },
        )
        assert response.status == 403, path
    check.refresh_from_db()
    assert check.status == Check.Status.DOWN
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED
    assert Membership.objects.get(user=owner, team=team).role == Membership.Role.OWNER
    assert not Silence.objects.exists()
    assert not ApiKey.objects.exists()


def test_password_reset_in_the_browser(new_page, site, owner, celery_worker):
    page = new_page()
    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(owner.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    # The worker sends the mail, not the request (issue 14).
    (message,) = celery_worker.wait_for(lambda: mail.outbox, what="the reset email")
    link = re.search(r"(/password-reset/\S+/\S+/)", message.body).group(1)
    page.goto(link)
    page.get_by_label(re.compile(r"^New password(?! confirmation)")).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    page.get_by_role("link", name="Log in").last.click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Checks of Ops")).to_be_visible()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_new_pages_fit_the_screen(new_page, site, owner, team, viewport):
    check = CheckFactory(team=team, name="nightly-" + "x" * 92, tags="a" * 50 + " b")
    incident = make_down(site, check)
    silence_incident_check(
        incident_id=incident.id, duration=timedelta(hours=4), user=owner, now=database_now()
    )
    # Runs with durations for the chart.
    for _ in range(3):
        http(f"{site}/ping/{check.ping_token}/start")
        http(f"{site}/ping/{check.ping_token}")
    sweep()
    policy = make_policy(team, [(10, [("user", owner.id)]), (30, [("team", team.id)])])
    create_api_key(team=team, name="terraform-" + "y" * 80, is_read_only=True)
    size = PHONE if viewport == "phone" else None
    anonymous = new_page(None, viewport=size) if size else new_page()
    for path, name in (("/signup/", "signup"), ("/password-reset/", "password-reset")):
        anonymous.goto(path)
        assert_fits_horizontally(anonymous, name)
        assert_accessible_basics(anonymous, name)
        screenshot(anonymous, f"{viewport}-{name}")

    page = new_page(owner, viewport=size) if size else new_page(owner)
    pages = {
        "list-filters": "/?tag=b&sort=status",
        "incidents": "/incidents/",
        "members": f"/teams/{team.id}/members/",
        "check-chart": f"/checks/{check.id}/",
        "incident-timeline": f"/incidents/{incident.id}/",
        "escalation": "/escalation/",
        "policy": f"/escalation/policies/{policy.id}/",
        "silences": "/escalation/silences/",
        "maintenance": "/escalation/maintenance/",
        "channels": "/channels/",
        "api-keys": "/team/api-keys/",
    }
    for name, path in pages.items():
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        assert_fits_horizontally(page, name)
        assert_accessible_basics(page, name)
        screenshot(page, f"{viewport}-{name}")
    page.goto(f"/checks/{check.id}/")
    expect(page.locator("#duration-chart rect")).to_have_count(3)
    assert page.errors == []


def test_api_key_is_created_shown_once_and_revoked(new_page, site, owner):
    page = new_page(owner)
    page.goto("/")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys of Ops")).to_be_visible()
    page.get_by_role("button", name="Create key").click()  # no name: refused next to the field
    expect(page.locator("#id_name_error")).to_have_text("Give the key a name.")
    assert not ApiKey.objects.exists()
    page.get_by_label(re.compile(r"^Name")).fill("grafana")
    page.get_by_label(re.compile(r"^Read-only")).check()
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret").inner_text()
    key = ApiKey.objects.get()
    assert key.is_read_only and secret.startswith(key.prefix)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert page.request.get(f"{site}/api/tocsin/v1/checks/", headers=bearer).status == 200
    screenshot(page, "api-key-created")
    page.goto("/team/api-keys/")
    expect(page.locator("#new-key-secret")).to_have_count(0)
    expect(page.locator(f"#api-key-{key.id}")).to_contain_text("read-only")
    page.get_by_role("button", name="Revoke the key grafana").click()
    expect(page.get_by_text("Key revoked")).to_be_visible()
    expect(page.locator(f"#api-key-{key.id}")).to_contain_text("revoked")
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert page.request.get(f"{site}/api/tocsin/v1/checks/", headers=bearer).status == 401


def test_admin_edits_a_check_with_errors_next_to_the_field(new_page, site, owner, team, check):
    parent = CheckFactory(team=team, name="database", slug="database")
    page = new_page(owner)
    page.goto(f"/checks/{check.id}/")
    page.get_by_role("link", name="Edit settings").click()
    expect(page.get_by_role("heading", name=f"Edit {check.name}")).to_be_visible()
    assert_accessible_basics(page, "check edit form")

    page.locator("[name=grace_0]").fill("0")  # novalidate: the server refuses it
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert").filter(has_text="was not changed")).to_be_visible()
    grace_group = page.locator("#fieldset-schedule")
    expect(grace_group.locator(".errorlist")).to_be_visible()
    screenshot(page, "check-edit-error")
    check.refresh_from_db()
    assert check.grace == timedelta(hours=1)

    page.locator("[name=grace_0]").fill("45")
    page.locator("[name=grace_1]").select_option("seconds")
    page.locator("[name=depends_on]").select_option(value=str(parent.id))
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert").filter(has_text="Saved")).to_be_visible()
    expect(page.get_by_role("heading", name=check.name)).to_be_visible()
    check.refresh_from_db()
    assert check.grace == timedelta(seconds=45)
    assert list(check.depends_on.all()) == [parent]
    assert page.errors == []
