"""The HTMX dashboard through Django's test client: log in and out, the checks list and its
polled partial, the check form, the check page, incident actions, the team switcher and the
static files the pages need (served by the app itself, no CDN)."""

import re
import shutil
import subprocess
import sys
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertInHTML, assertNotContains

from apps.checks.models import Check
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.incidents.services import acknowledge_incident
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory, TeamFactory

HOUR, MIN = timedelta(hours=1), timedelta(minutes=1)
LIST = reverse("dashboard:check-list")
CREATE = reverse("dashboard:check-create")
SWITCH = reverse("dashboard:switch-team")
HTMX = {"HTTP_HX_REQUEST": "true"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'

VALID_CHECK = {
    "name": "Nightly backup",
    "slug": "",
    "environment": "production",
    "tags": "db nightly",
    "description": "",
    "period_0": "1",
    "period_1": "days",
    "grace_0": "1",
    "grace_1": "hours",
}


def detail_url(check):
    return reverse("dashboard:check-detail", args=[check.id])


def action_url(incident, action):
    return reverse("dashboard:incident-action", args=[incident.id, action])


def ping(check, kind="success", *, now, **kw):
    assert record_ping(
        ping=PingData(kind=kind, method="POST", **kw), token=check.ping_token, now=now
    )


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def csrf_client_for(user):
    """A client that enforces CSRF like a browser, with the token read from a page."""
    client = client_for(user, enforce_csrf_checks=True)
    client.get(LIST)
    return client, client.cookies["csrftoken"].value


@pytest.fixture
def incident(check, t0):
    return Incident.objects.create(
        owner=check, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=t0, details={}
    )


# --- log in and out -------------------------------------------------------------------------


def test_login_page_has_labelled_fields(client, db):
    response = client.get(reverse("login"))
    assertContains(response, '<label for="id_username">Username</label>')
    assertContains(response, '<label for="id_password">Password</label>')
    assertContains(response, 'id="id_password" name="password" type="password"')


def test_login_with_the_right_password_opens_the_checks_list(client, owner):
    response = client.post(
        reverse("login"), {"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response.url == LIST
    assertContains(client.get(LIST), "Checks of Ops")


def test_login_with_a_wrong_password_says_so_and_keeps_the_username_escaped(client, owner):
    response = client.post(reverse("login"), {"username": HOSTILE, "password": "nope"})
    assert response.status_code == 200
    assertContains(response, 'role="alert"')
    assertContains(response, "Please enter a correct username and password")
    assert HOSTILE not in response.content.decode()
    assertContains(response, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
    assert SESSION_KEY not in client.session


def test_login_ignores_an_offsite_next(client, owner):
    response = client.post(
        reverse("login") + "?next=https://evil.example/",
        {"username": "alice", "password": "correct horse battery", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert response.url == LIST


def test_login_follows_a_local_next(client, owner, check):
    response = client.post(
        reverse("login"),
        {"username": "alice", "password": "correct horse battery", "next": detail_url(check)},
    )
    assert response.url == detail_url(check)


def test_login_post_without_csrf_token_is_refused(db, owner):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("login"), {"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 403
    assert SESSION_KEY not in client.session


def test_logout_by_post_ends_the_session(owner):
    client, token = csrf_client_for(owner)
    response = client.post(reverse("logout"), HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert SESSION_KEY not in client.session
    assert client.get(LIST).status_code == 302


def test_logout_by_get_is_refused_and_keeps_the_session(owner_client):
    assert owner_client.get(reverse("logout")).status_code == 405
    assert owner_client.get(LIST).status_code == 200


def test_logout_without_csrf_token_is_refused(owner):
    client, _ = csrf_client_for(owner)
    assert client.post(reverse("logout")).status_code == 403
    assert client.get(LIST).status_code == 200


def test_every_page_has_a_logout_form_with_csrf(owner_client, check):
    response = owner_client.get(detail_url(check))
    assertContains(response, f'action="{reverse("logout")}"')
    assertContains(response, 'name="csrfmiddlewaretoken"')


@pytest.mark.parametrize("name", ["list", "create", "detail", "incident", "ping-body"])
def test_anonymous_visitor_is_sent_to_login(client, check, incident, name):
    check.pings.create(n=1, kind="success", received_at=incident.opened_at, method="GET")
    url = {
        "list": LIST,
        "create": CREATE,
        "detail": detail_url(check),
        "incident": reverse("dashboard:incident-detail", args=[incident.id]),
        "ping-body": reverse("dashboard:ping-body", args=[check.id, 1]),
    }[name]
    response = client.get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login") + "?next=")


def test_anonymous_htmx_poll_redirects_the_whole_page_to_login(client, check):
    # A poll from a page whose session expired must not swap the login form into the table.
    response = client.get(LIST, HTTP_HX_CURRENT_URL="http://testserver/", **HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("login") + "?next=/"
    assert response.content == b""


def test_anonymous_htmx_action_is_redirected_not_performed(client, incident):
    response = client.post(action_url(incident, "acknowledge"), **HTMX)
    assert response["HX-Redirect"].startswith(reverse("login"))
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


# --- static files: htmx and our own, served by the app ----------------------------------------


def static_urls(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)


def test_pages_load_scripts_and_styles_only_from_the_app(owner_client, check):
    urls = static_urls(owner_client.get(detail_url(check)).content.decode())
    assert any("htmx" in url for url in urls)
    assert any(url.endswith("/js/tocsin.js") for url in urls)
    assert any(url.endswith("/css/tocsin.css") for url in urls)
    assert all(url.startswith("/static/") for url in urls), urls


def test_htmx_and_our_assets_are_served_through_whitenoise(owner_client, client, check):
    urls = static_urls(owner_client.get(LIST).content.decode())
    assert len(urls) == 4  # icon, stylesheet, htmx, ours
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        # WhiteNoise answers before Django's URL routing; nothing else could serve /static/.
        assert type(response).__name__ == "WhiteNoiseFileResponse"
        body = b"".join(response.streaming_content)
        assert body
    htmx_url = next(url for url in urls if "htmx" in url)
    assert b"htmx" in b"".join(client.get(htmx_url).streaming_content)


# --- checks list and its polled partial -------------------------------------------------------


def test_list_shows_only_the_current_teams_checks(owner_client, check, other_team):
    CheckFactory(team=other_team, name="secret-of-elsewhere")
    response = owner_client.get(LIST)
    assertContains(response, "nightly-backup")
    assertNotContains(response, "secret-of-elsewhere")


def test_list_shows_status_as_text_in_each_pill_and_counts(owner_client, check):
    response = owner_client.get(LIST)
    assertInHTML(
        '<span class="pill pill-new" data-status="new">New</span>', response.content.decode()
    )
    assertContains(response, 'aria-label="Checks per status"')
    # Each count is also a link that filters the list by its status.
    assertInHTML(
        '<li><a id="count-new" href="?status=new" title="Show only the new checks">'
        '<span class="pill pill-new">New</span> 1</a></li>',
        response.content.decode(),
    )


def test_list_partial_alone_when_htmx_asks_and_it_keeps_polling(owner_client, check):
    full = owner_client.get(LIST)
    partial = owner_client.get(LIST, **HTMX)
    body = partial.content.decode().strip()
    assert partial.status_code == 200
    assert body.startswith('<div id="check-table"')
    assert "<html" not in body and "<h1>" not in body and "Log out" not in body
    # The fragment carries its own trigger, so swapping it in keeps the polling going.
    assert 'hx-get="/"' in body and 'hx-trigger="every 5s [!document.hidden]"' in body
    assert 'hx-swap="outerHTML"' in body
    assert body in full.content.decode()
    # The same URL answers two ways, so caches must keep them apart.
    assert "HX-Request" in partial["Vary"] and "HX-Request" in full["Vary"]


def test_list_partial_reflects_a_ping_and_a_sweep(owner_client, check, t0):
    assertInHTML(
        '<span class="pill pill-new" data-status="new">New</span>',
        owner_client.get(LIST, **HTMX).content.decode(),
    )
    ping(check, now=t0)
    sweep_due_checks(now=t0 + MIN)
    body = owner_client.get(LIST, **HTMX).content.decode()
    assertInHTML('<span class="pill pill-up" data-status="up">Up</span>', body)
    assert re.search(r'<span class="pill pill-up">Up</span> 1</a>', body)


def test_focusable_links_in_the_polled_table_have_stable_ids(owner_client, check):
    body = owner_client.get(LIST, **HTMX).content.decode()
    assert f'<a id="check-link-{check.id}" href="{detail_url(check)}">' in body


def test_hostile_check_fields_are_escaped_in_the_list(owner_client, team):
    CheckFactory(team=team, name=HOSTILE, tags="<b>x</b>", environment="<i>env</i>")
    for response in (owner_client.get(LIST), owner_client.get(LIST, **HTMX)):
        body = response.content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body
        assert "<b>x</b>" not in body and "<i>env</i>" not in body
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_new_check_button_only_for_admins_and_owners(client, owner, member, viewer, check):
    assertContains(client_for(owner).get(LIST), f'href="{CREATE}"')
    for user in (member, viewer):
        response = client_for(user).get(LIST)
        assert response.status_code == 200
        assertNotContains(response, f'href="{CREATE}"')


def test_user_without_a_team_gets_403(db):
    user = MembershipFactory().user
    user.memberships.all().delete()
    assert client_for(user).get(LIST).status_code == 403


def test_list_refuses_post(owner_client):
    assert owner_client.post(LIST).status_code == 405


# --- the check form -------------------------------------------------------------------------


def test_form_controls_are_labelled_and_grouped(owner_client):
    response = owner_client.get(CREATE)
    body = response.content.decode()
    for field in ("name", "slug", "environment", "tags", "description"):
        assert f'<label for="id_{field}">' in body, field
    assert "<legend>Period <span" in body and "<legend>Grace <span" in body
    assert 'aria-label="Period amount"' in body and 'aria-label="Period unit"' in body
    assert 'aria-describedby="id_slug_helptext"' in body
    # Help text is escaped text, not markup: "<ping key>" must not become a tag.
    assert "/ping/&lt;ping key&gt;/&lt;slug&gt;" in body


def test_admin_creates_a_check_and_lands_on_its_page(client, team, owner):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN).user
    response = client_for(admin).post(CREATE, VALID_CHECK)
    check = Check.objects.get()
    assert response.status_code == 302
    assert response.url == detail_url(check)
    assert (check.team, check.slug, check.tags) == (team, "nightly-backup", "db nightly")


@pytest.mark.parametrize("method", ["get", "post"])
def test_viewer_and_member_cannot_create_checks(client, member, viewer, method):
    for user in (viewer, member):
        response = getattr(client_for(user), method)(CREATE, VALID_CHECK)
        assert response.status_code == 403
    assert not Check.objects.exists()


def test_create_without_csrf_token_is_refused(owner):
    client, token = csrf_client_for(owner)
    assert client.post(CREATE, VALID_CHECK).status_code == 403
    assert client.post(CREATE, {**VALID_CHECK, "csrfmiddlewaretoken": "x" * 64}).status_code == 403
    assert not Check.objects.exists()
    assert client.post(CREATE, {**VALID_CHECK, "csrfmiddlewaretoken": token}).status_code == 302
    assert Check.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": "x" * 101}, "name", "Ensure this value has at most 100 characters (it has 101)."),
        ({"description": "d" * 5001}, "description", "at most 5000 characters (it has 5001)"),
        ({"tags": "t" * 51}, "tags", "Each tag must be at most 50 characters"),
        ({"period_0": "0"}, "period", "Period must be at least 1 minute."),
        ({"grace_0": "366", "grace_1": "days"}, "grace", "Grace must be at most 365 days."),
        ({"period_0": "soon"}, "period", "Enter a whole number."),
    ],
    ids=["name-101", "description-5001", "tag-51", "period-0", "grace-366d", "nan"],
)
def test_invalid_input_shows_the_error_next_to_its_field_and_creates_nothing(
    owner_client, changes, field, message
):
    response = owner_client.post(CREATE, {**VALID_CHECK, **changes})
    assert response.status_code == 400
    body = unescape(response.content.decode())
    # The error list sits inside the field's own block, linked to the control for screen readers.
    block = re.search(
        rf'<div class="field has-error">(?:(?!<div class="field).)*id_{field}', body, re.S
    )
    assert block, f"no error block for {field}"
    error_list = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', body, re.S)
    assert error_list and message in error_list.group(1)
    assert f"id_{field}_error" in body.split(f'id="id_{field}_error"')[0]  # referenced before
    assert 'aria-invalid="true"' in body
    assert "please correct the fields marked below" in body
    assert not Check.objects.exists()


def test_entered_values_survive_a_failed_submission(owner_client):
    response = owner_client.post(CREATE, {**VALID_CHECK, "period_0": "0", "tags": "keep me"})
    assertContains(response, 'value="Nightly backup"', status_code=400)
    assertContains(response, 'value="keep me"', status_code=400)


def test_completely_empty_post_is_a_form_error_not_a_crash(owner_client):
    response = owner_client.post(CREATE, {})
    assert response.status_code == 400
    assertContains(response, "This field is required.", status_code=400)


def test_fields_outside_the_form_cannot_be_set(owner_client, team, other_team):
    token = "00000000-0000-0000-0000-000000000001"
    response = owner_client.post(
        CREATE,
        {**VALID_CHECK, "status": "up", "team": other_team.id, "ping_token": token, "n_pings": 9},
    )
    assert response.status_code == 302
    check = Check.objects.get()
    assert (check.status, check.team, check.n_pings) == (Check.Status.NEW, team, 0)
    assert str(check.ping_token) != token


def test_a_slug_another_check_has_is_accepted_without_asking(owner_client, check):
    # Slugs are not unique (as in Healthchecks); pings by a shared slug answer 409 instead.
    response = owner_client.post(CREATE, {**VALID_CHECK, "slug": check.slug})
    assert response.status_code == 302
    assert Check.objects.filter(slug=check.slug).count() == 2


def test_hostile_name_is_escaped_on_the_check_page(owner_client):
    response = owner_client.post(CREATE, {**VALID_CHECK, "name": HOSTILE, "description": HOSTILE})
    page = owner_client.get(response.url).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 3  # title, h1, text


def test_hostile_input_is_escaped_when_the_form_redisplays(owner_client):
    response = owner_client.post(CREATE, {**VALID_CHECK, "name": HOSTILE, "period_1": HOSTILE})
    body = response.content.decode()
    assert response.status_code == 400
    assert "<script>alert" not in body and "<img src=x" not in body


# --- the check page ---------------------------------------------------------------------------


def test_check_page_shows_the_ping_url_with_a_copy_button(owner_client, check):
    response = owner_client.get(detail_url(check))
    url = f"https://tocsin.example/ping/{check.ping_token}"
    assertContains(response, f'<code id="ping-url">{url}</code>')
    assertContains(response, 'data-copy="ping-url" aria-label="Copy the ping URL"')
    assertContains(response, f"https://tocsin.example/ping/{check.team.ping_key}/nightly-backup")


def snippets(html: str) -> dict[str, str]:
    return {
        name: unescape(text)
        for name, text in re.findall(r'<pre id="snippet-([a-z]+)">(.*?)</pre>', html, re.S)
    }


def test_check_page_snippets_use_the_check_url(owner_client, check):
    found = snippets(owner_client.get(detail_url(check)).content.decode())
    url = f"https://tocsin.example/ping/{check.ping_token}"
    assert found["success"] == f"curl -fsS -m 10 --retry 5 -o /dev/null {url}"
    assert found["start"] == f"curl -fsS -m 10 --retry 5 -o /dev/null {url}/start"
    assert found["fail"] == f"curl -fsS -m 10 --retry 5 -o /dev/null {url}/fail"
    assert found["cron"].endswith(
        f"/path/to/job.sh && curl -fsS -m 10 --retry 5 -o /dev/null {url}"
    )
    wrapper = found["wrapper"]
    assert wrapper.startswith("#!/bin/sh\n")
    assert f"url={url}\n" in wrapper
    assert '"$url/start"' in wrapper and '--data-binary @- "$url/$status"' in wrapper


def test_check_page_partial_alone_when_htmx_asks(owner_client, check):
    response = owner_client.get(detail_url(check), **HTMX)
    body = response.content.decode().strip()
    assert body.startswith('<div id="check-status"') and body.endswith("</div>")
    assert "Ping URL" not in body and "<html" not in body
    assert "every 1 day, 1 hour grace" in body
    assert "HX-Request" in response["Vary"]


def test_check_page_lists_the_last_50_pings_newest_first(owner_client, check, t0):
    for i in range(55):
        ping(check, "log", now=t0 + i * MIN)
    body = owner_client.get(detail_url(check)).content.decode()
    numbers = [int(n) for n in re.findall(r'<tr id="ping-(\d+)">', body)]
    assert numbers == list(range(55, 5, -1))


def test_ping_bodies_are_expandable_escaped_and_long_ones_cut_to_their_tail(
    owner_client, check, t0
):
    ping(check, "fail", now=t0, exit_status=2, body=HOSTILE.encode())
    long_body = ("line\n" * 2000 + "THE END").encode()
    ping(check, "log", now=t0 + MIN, body=long_body, body_truncated=True)
    ping(check, now=t0 + 2 * MIN, body=b"\xff\xfe not utf-8")
    body = owner_client.get(detail_url(check)).content.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
    assert "Failure (exit 2)" in body
    assert f"<summary>{len(long_body)} bytes, truncated</summary>" in body
    assert "THE END</pre>" in body
    assert body.count("line\n") < 1000  # only the tail is on the page
    assert reverse("dashboard:ping-body", args=[check.id, 2]) in body
    assert "\ufffd\ufffd not utf-8" in body


def test_full_ping_body_is_plain_text_that_no_browser_renders(owner_client, check, t0):
    ping(check, now=t0, body=HOSTILE.encode())
    response = owner_client.get(reverse("dashboard:ping-body", args=[check.id, 1]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"
    assert response.content.decode() == HOSTILE


@pytest.mark.parametrize("n", ["2", "0", "99999999999999999999"])
def test_unknown_ping_body_is_404(owner_client, check, t0, n):
    ping(check, now=t0)
    assert owner_client.get(f"/checks/{check.id}/pings/{n}/body").status_code == 404


def test_outsider_gets_404_on_a_ping_body(client, outsider, check, t0):
    ping(check, now=t0, body=b"secret")
    response = client_for(outsider).get(reverse("dashboard:ping-body", args=[check.id, 1]))
    assert response.status_code == 404
    assert b"secret" not in response.content


def test_viewer_may_read_ping_bodies(client, viewer, check, t0):
    ping(check, now=t0, body=b"visible")
    response = client_for(viewer).get(reverse("dashboard:ping-body", args=[check.id, 1]))
    assert response.content == b"visible"


def test_check_page_shows_flips_with_status_labels(owner_client, check, t0):
    ping(check, now=t0)
    sweep_due_checks(now=t0 + MIN)
    assertContains(owner_client.get(detail_url(check)), "New → Up")


@pytest.mark.parametrize(
    "path", ["/checks/not-a-uuid/", "/checks/00000000-0000-0000-0000-000000000000/"]
)
def test_malformed_or_unknown_check_id_is_404(owner_client, path):
    assert owner_client.get(path).status_code == 404


# --- incidents: acknowledge and resolve -------------------------------------------------------


def test_member_sees_acknowledge_and_resolve_as_htmx_forms(client, member, check, incident):
    body = client_for(member).get(detail_url(check)).content.decode()
    ack = action_url(incident, "acknowledge")
    assert f'<form method="post" action="{ack}" hx-post="{ack}"' in body
    assert f'hx-target="#incident-{incident.id}" hx-swap="outerHTML"' in body
    assert f'<button type="submit" id="acknowledge-{incident.id}"' in body
    assert f'id="resolve-{incident.id}"' in body
    # CSRF for htmx comes from the body's hx-headers (and from the form for the no-JS post).
    assert re.search(r"<body hx-headers='\{\"x-csrftoken\": \"[A-Za-z0-9]{64}\"\}'>", body)


@pytest.mark.parametrize("page", ["check", "incident"])
def test_viewer_sees_no_action_buttons(client, viewer, check, incident, page):
    url = (
        detail_url(check)
        if page == "check"
        else reverse("dashboard:incident-detail", args=[incident.id])
    )
    response = client_for(viewer).get(url)
    assert response.status_code == 200
    assertContains(response, "Triggered")
    for text in ("Acknowledge</button>", "Resolve</button>", "hx-post", "/acknowledge/"):
        assertNotContains(response, text)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_viewer_gets_403_posting_an_action_directly(client, viewer, incident, action):
    response = client_for(viewer).post(action_url(incident, action), **HTMX)
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_outsider_gets_404_on_an_incident_action(client, outsider, incident, action):
    response = client_for(outsider).post(action_url(incident, action), **HTMX)
    assert response.status_code == 404
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_member_acknowledges_via_htmx_and_gets_the_updated_row(client, member, incident):
    client, token = csrf_client_for(member)
    response = client.post(action_url(incident, "acknowledge"), HTTP_X_CSRFTOKEN=token, **HTMX)
    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith(f'<tr id="incident-{incident.id}">') and body.endswith("</tr>")
    assertInHTML(
        '<span class="pill pill-acknowledged" data-state="acknowledged">Acknowledged</span>', body
    )
    assert "by bob" in body
    assert "Acknowledge</button>" not in body
    # The next control the keyboard needs gets the focus, since the clicked button is gone.
    assert re.search(rf'id="resolve-{incident.id}" class="[^"]*" autofocus>Resolve</button>', body)
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    assert incident.acknowledged_by == member


def test_member_resolves_via_htmx_and_the_row_has_no_buttons_left(client, member, incident):
    client, token = csrf_client_for(member)
    response = client.post(action_url(incident, "resolve"), HTTP_X_CSRFTOKEN=token, **HTMX)
    assert response.status_code == 200
    assertInHTML(
        '<span class="pill pill-resolved" data-state="resolved">Resolved</span>',
        response.content.decode(),
    )
    assertNotContains(response, "</button>")
    incident.refresh_from_db()
    assert (incident.state, incident.resolved_by, incident.resolution) == (
        "resolved",
        member,
        "manual",
    )


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_incident_action_without_csrf_token_is_refused(member, incident, action):
    client, _ = csrf_client_for(member)
    assert client.post(action_url(incident, action), **HTMX).status_code == 403
    assert (
        client.post(action_url(incident, action), HTTP_X_CSRFTOKEN="x" * 64, **HTMX).status_code
        == 403
    )
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_acknowledging_twice_returns_409_with_the_current_row_and_reason(
    client, member, owner, incident, t0
):
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0)
    response = client_for(member).post(action_url(incident, "acknowledge"), **HTMX)
    assert response.status_code == 409
    assertContains(response, "This incident is already acknowledged.", status_code=409)
    assertContains(response, "by alice", status_code=409)
    incident.refresh_from_db()
    assert incident.acknowledged_by == owner


def test_plain_form_post_without_javascript_redirects_to_the_incident(client, member, incident):
    response = client_for(member).post(action_url(incident, "acknowledge"))
    assert response.status_code == 302
    assert response.url == reverse("dashboard:incident-detail", args=[incident.id])
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED


def test_plain_form_post_that_fails_shows_the_reason_on_the_next_page(client, member, incident):
    member_client = client_for(member)
    member_client.post(action_url(incident, "resolve"))
    response = member_client.post(action_url(incident, "resolve"), follow=True)
    assertContains(response, "This incident is already resolved.")


@pytest.mark.parametrize("action", ["delete", "ACKNOWLEDGE", "<script>"])
def test_unknown_action_is_404_and_changes_nothing(client, member, incident, action):
    response = client_for(member).post(f"/incidents/{incident.id}/{action}/", **HTMX)
    assert response.status_code == 404
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_incident_action_refuses_get(client, member, incident):
    assert client_for(member).get(action_url(incident, "acknowledge")).status_code == 405


@pytest.mark.parametrize("incident_id", ["0", "99999999999999999999"])
def test_unknown_incident_is_404(owner_client, incident_id):
    assert owner_client.get(f"/incidents/{incident_id}/").status_code == 404
    assert owner_client.post(f"/incidents/{incident_id}/acknowledge/").status_code == 404


def test_incident_page_shows_what_happened_and_escapes_the_log(owner_client, check, t0):
    incident = Incident.objects.create(
        owner=check,
        kind=Incident.Kind.FAILURE_SIGNAL,
        opened_at=t0,
        details={"exit_status": 3, "body_tail": HOSTILE},
    )
    response = owner_client.get(reverse("dashboard:incident-detail", args=[incident.id]))
    assertContains(response, "Exit status 3")
    assertNotContains(response, "<script>alert")
    assertContains(response, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")


def test_missed_heartbeat_incident_page_shows_times_and_no_exit_status(owner_client, incident):
    incident.details = {
        "expected_at": "2026-11-02T03:00:00+00:00",
        "last_ping_at": "2026-11-01T04:00:00.123456+01:00",
    }
    incident.save()
    response = owner_client.get(reverse("dashboard:incident-detail", args=[incident.id]))
    expected = '<time datetime="2026-11-02T03:00:00+00:00">2 Nov 2026, 03:00:00 UTC</time>'
    assertContains(response, f"Expected a ping at {expected}")
    last = '<time datetime="2026-11-01T04:00:00.123456+01:00">1 Nov 2026, 03:00:00 UTC</time>'
    assertContains(response, f"Last ping at {last}")
    assertNotContains(response, "Exit status")


# --- team switcher ----------------------------------------------------------------------------


@pytest.fixture
def second_team(owner):
    team = TeamFactory(name="Platform", slug="platform")
    MembershipFactory(team=team, user=owner, role=Membership.Role.VIEWER)
    CheckFactory(team=team, name="platform-job")
    return team


def test_no_switcher_for_a_user_in_one_team(owner_client, check):
    assertNotContains(owner_client.get(LIST), 'name="team_id"')


def test_switcher_lists_only_the_users_teams_with_the_current_one_selected(
    owner_client, second_team, other_team
):
    body = owner_client.get(LIST).content.decode()
    assert '<label for="team-switcher-select">Team</label>' in body
    options = re.findall(r'<option value="(\d+)"( selected)?>([^<]+)</option>', body)
    assert [(name, bool(sel)) for _, sel, name in options] == [
        ("Ops (owner)", True),
        ("Platform (viewer)", False),
    ]
    assert "Elsewhere" not in body


def test_switching_team_shows_that_teams_checks_and_applies_its_role(owner, second_team, check):
    client, token = csrf_client_for(owner)
    response = client.post(SWITCH, {"team_id": second_team.id, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == LIST
    assert client.session["team_id"] == second_team.id
    body = client.get(LIST).content.decode()
    assert "Checks of Platform" in body and "platform-job" in body
    assert "nightly-backup" not in body
    assert f'<option value="{second_team.id}" selected>' in body
    # Owner of Ops, but only a viewer of Platform: no creating checks there.
    assert f'href="{CREATE}"' not in body
    assert client.get(CREATE).status_code == 403


def test_switching_to_a_team_of_someone_else_is_404_and_changes_nothing(
    owner_client, second_team, other_team
):
    response = owner_client.post(SWITCH, {"team_id": other_team.id})
    assert response.status_code == 404
    assert "team_id" not in owner_client.session
    assertContains(owner_client.get(LIST), "Checks of Ops")


@pytest.mark.parametrize("value", ["", "abc", "-1", "0", str(2**64), "1; DROP TABLE"])
def test_switching_with_a_malformed_team_id_is_400(owner_client, second_team, value):
    assert owner_client.post(SWITCH, {"team_id": value}).status_code == 400
    assert owner_client.post(SWITCH, {}).status_code == 400
    assert "team_id" not in owner_client.session


def test_switching_requires_post_and_csrf(owner, second_team):
    client, _ = csrf_client_for(owner)
    assert client.get(SWITCH, {"team_id": second_team.id}).status_code == 405
    assert client.post(SWITCH, {"team_id": second_team.id}).status_code == 403
    assert "team_id" not in client.session


def test_anonymous_cannot_switch(client, second_team):
    response = client.post(SWITCH, {"team_id": second_team.id})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_a_team_left_after_switching_falls_back_to_another(owner_client, owner, second_team):
    owner_client.post(SWITCH, {"team_id": second_team.id})
    Membership.objects.filter(user=owner, team=second_team).delete()
    assertContains(owner_client.get(LIST), "Checks of Ops")


def test_check_is_created_in_the_team_chosen_in_the_session(owner, second_team, team):
    Membership.objects.filter(user=owner, team=second_team).update(role=Membership.Role.ADMIN)
    client = client_for(owner)
    client.post(SWITCH, {"team_id": second_team.id})
    client.post(CREATE, VALID_CHECK)
    assert Check.objects.get(slug="nightly-backup").team == second_team


def test_pages_of_a_check_in_another_of_my_teams_open_whatever_the_session_team(
    owner_client, second_team
):
    check = Check.objects.get(team=second_team)
    response = owner_client.get(detail_url(check))
    assert response.status_code == 200
    assertContains(response, "platform-job")


# --- the snippets really work when a shell runs them ------------------------------------------


@pytest.fixture
def shell_snippets(live_server, settings, owner, check):
    """The check page's snippets as a shell would get them, pointing at a live server."""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    settings.SITE_URL = live_server.url
    return snippets(client_for(owner).get(detail_url(check)).content.decode())


def run_shell(script: str, shell: str = "sh") -> subprocess.CompletedProcess:
    return subprocess.run([shell, "-c", script], capture_output=True, text=True, timeout=60)


def job_script(tmp_path, *, exit_status: int) -> str:
    job = tmp_path / "job.sh"
    job.write_text(
        "#!/bin/sh\n"
        'i=0; while [ $i -lt 2000 ]; do echo "noise line $i"; i=$((i+1)); done\n'
        "echo 'error: disk full' >&2\n"
        f"exit {exit_status}\n"
    )
    job.chmod(0o755)
    return str(job)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["success", "start", "fail"])
def test_one_line_snippets_record_their_kind(shell_snippets, check, name):
    result = run_shell(shell_snippets[name])
    assert result.returncode == 0, result.stderr
    assert list(check.pings.values_list("kind", flat=True)) == [name]


@pytest.mark.django_db(transaction=True)
def test_crontab_snippet_pings_after_the_job_succeeds(shell_snippets, check):
    command = shell_snippets["cron"].split(" ", 5)[5]  # drop the five schedule fields
    assert run_shell(command.replace("/path/to/job.sh", "true")).returncode == 0
    assert run_shell(command.replace("/path/to/job.sh", "false")).returncode != 0
    assert list(check.pings.values_list("kind", flat=True)) == ["success"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_wrapper_snippet_reports_the_exit_status_with_the_end_of_the_log(
    shell_snippets, check, tmp_path, shell
):
    script = shell_snippets["wrapper"].replace(
        "/path/to/job.sh", job_script(tmp_path, exit_status=3)
    )
    result = run_shell(script, shell)
    assert result.returncode == 3, result.stderr  # the job's own status is passed on
    start, end = check.pings.order_by("n")
    assert start.kind == "start"
    assert (end.kind, end.exit_status, end.method) == ("fail", 3, "POST")
    body = end.body_text
    assert body.endswith("noise line 1999\nerror: disk full\n")
    assert len(end.body) == 10000 and not end.body_truncated


@pytest.mark.django_db(transaction=True)
def test_wrapper_snippet_reports_success_for_exit_status_zero(shell_snippets, check, tmp_path):
    script = shell_snippets["wrapper"].replace(
        "/path/to/job.sh", job_script(tmp_path, exit_status=0)
    )
    assert run_shell(script).returncode == 0
    assert [(p.kind, p.exit_status) for p in check.pings.order_by("n")] == [
        ("start", None),
        ("success", 0),
    ]


@pytest.mark.django_db(transaction=True)
def test_python_snippet_pings_the_check(shell_snippets, check):
    result = subprocess.run(
        [sys.executable, "-c", shell_snippets["python"]], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert list(check.pings.values_list("kind", flat=True)) == ["success"]


@pytest.mark.django_db(transaction=True)
def test_wget_snippet_pings_the_check(shell_snippets, check):
    if not shutil.which("wget"):
        pytest.skip("wget is not installed")
    result = run_shell(shell_snippets["wget"])
    assert result.returncode == 0, result.stderr
    assert list(check.pings.values_list("kind", flat=True)) == ["success"]
