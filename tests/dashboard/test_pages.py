"""The check list's filters, search and sort; the check page's uptime, chart, snippets and
actions (pause, resume, new ping URL, delete); the incident lists and timeline. Roles: viewers
look, members act on incidents, admins edit checks; another team's object is a 404."""

import re
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.checks.models import Check, Flip, Ping, Run
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from apps.escalation.models import Silence
from apps.incidents.models import Incident
from apps.incidents.services import acknowledge_incident
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory

LIST = reverse("dashboard:check-list")
INCIDENTS = reverse("dashboard:incident-list")
HTMX = {"HTTP_HX_REQUEST": "true"}


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def names(response) -> list[str]:
    """Check names in the order the list shows them."""
    return re.findall(r'<a id="check-link-[^"]+" href="[^"]+">([^<]+)</a>', response.text)


def detail(check):
    return reverse("dashboard:check-detail", args=[check.id])


def action(check, name):
    return reverse("dashboard:check-action", args=[check.id, name])


def regenerate(check):
    return reverse("dashboard:check-regenerate", args=[check.id])


def delete(check):
    return reverse("dashboard:check-delete", args=[check.id])


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="adam").user


@pytest.fixture
def fleet(team):
    """Four checks with different statuses, tags, environments and last pings."""
    now = database_now()
    return {
        "db-backup": CheckFactory(
            team=team, name="db-backup", tags="db nightly", environment="production",
            status="down", last_ping_at=now - timedelta(hours=3),
        ),
        "db-vacuum": CheckFactory(
            team=team, name="db-vacuum", tags="db", environment="staging",
            status="up", last_ping_at=now - timedelta(minutes=5),
        ),
        "report": CheckFactory(
            team=team, name="Weekly report", tags="dbx reports", environment="production",
            status="late", last_ping_at=now - timedelta(hours=1),
        ),
        "cleanup": CheckFactory(
            team=team, name="cleanup", tags="", environment="", status="new", last_ping_at=None
        ),
    }  # fmt: skip


# --- the check list: filter, search, sort ---------------------------------------------------------

B, V, W, C = "db-backup", "db-vacuum", "Weekly report", "cleanup"
FILTERS = {
    "no filter: worst first": ({}, [B, W, V, C]),
    "sort by name": ({"sort": "name"}, [C, B, V, W]),
    "search is case-insensitive": ({"q": "DB-"}, [B, V]),
    "search by a middle part": ({"q": "report"}, [W]),
    "status": ({"status": "down"}, [B]),
    "tag is a whole tag, not a prefix": ({"tag": "db"}, [B, V]),
    "environment": ({"environment": "production"}, [B, W]),
    "combined": ({"tag": "db", "environment": "staging"}, [V]),
    "sort by name descending": ({"sort": "-name"}, [W, V, B, C]),
    "sort by status, worst first": ({"sort": "status"}, [B, W, V, C]),
    "newest ping first, never last": ({"sort": "-last_ping"}, [V, W, B, C]),
    "oldest ping first, never last": ({"sort": "last_ping"}, [B, W, V, C]),
    "search with SQL wildcards is literal": ({"q": "%"}, []),
    "unknown tag matches nothing": ({"tag": "nope"}, []),
}  # fmt: skip


@pytest.mark.parametrize(("query", "expected"), FILTERS.values(), ids=FILTERS)
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "partial"])
def test_list_filters_search_and_sort(owner_client, fleet, query, expected, htmx):
    response = owner_client.get(LIST, query, **(HTMX if htmx else {}))
    assert response.status_code == 200
    assert names(response) == expected


def test_the_filter_form_keeps_the_chosen_values(owner_client, fleet):
    response = owner_client.get(LIST, {"q": "db", "status": "up", "tag": "db", "sort": "status"})
    body = response.text
    assert 'name="q" value="db"' in body
    assert '<option value="up" selected>' in body
    assert '<option value="db" selected>db</option>' in body
    assert '<option value="status" selected>' in body
    assertContains(response, "1 of 4 checks match the filters.")


def test_polled_table_includes_the_filter_form_and_pushes_filter_urls(owner_client, fleet):
    body = owner_client.get(LIST).text
    table = re.search(r'<div id="check-table"[^>]*>', body).group(0)
    assert 'hx-include="#check-filters"' in table
    assert "every 5s" in table
    form = re.search(r'<form id="check-filters"[^>]*>', body, re.S).group(0)
    assert 'method="get"' in form and 'hx-push-url="true"' in form
    assert 'hx-target="#check-table"' in form


def test_history_restore_gets_the_whole_page_not_the_partial(owner_client, fleet):
    response = owner_client.get(
        LIST, {"status": "down"}, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.text
    assert names(response) == ["db-backup"]
    assert "HX-History-Restore-Request" in response["Vary"]


def test_filter_offers_only_this_teams_tags_and_environments(owner_client, fleet, other_team):
    CheckFactory(team=other_team, tags="secret-tag", environment="secret-env")
    body = owner_client.get(LIST).text
    assert "secret-tag" not in body and "secret-env" not in body
    assert '<option value="reports">reports</option>' in body


BAD_FILTERS = {
    "unknown status": ({"status": "exploded"}, "Unknown status"),
    "unknown sort": ({"sort": "password"}, "Unknown order"),
    "hostile status": ({"status": "<script>alert(1)</script>"}, "Unknown status"),
    "oversized search": ({"q": "x" * 5000}, "at most 100 characters"),
    "oversized tag": ({"tag": "t" * 51}, "at most 50 characters"),
}


@pytest.mark.parametrize(("query", "message"), BAD_FILTERS.values(), ids=BAD_FILTERS)
def test_invalid_filters_are_reported_and_not_applied(owner_client, fleet, query, message):
    response = owner_client.get(LIST, query)
    assert response.status_code == 200
    assertContains(response, message)
    assert len(names(response)) == 4  # the bad filter was ignored, the list is whole
    assert "<script>alert(1)</script>" not in response.text


def test_counts_cover_the_whole_team_and_link_to_a_status_filter(owner_client, fleet):
    body = owner_client.get(LIST, {"status": "up"}).text
    assert re.search(r'href="\?status=down"[^>]*><span class="pill pill-down">Down</span> 1', body)
    assert re.search(r'href="\?status=new"[^>]*><span class="pill pill-new">New</span> 1', body)


def test_no_match_says_so_with_a_way_back(owner_client, fleet):
    response = owner_client.get(LIST, {"q": "zzz"})
    assertContains(response, "No check matches the filters.")


def test_list_filters_never_show_another_teams_checks(client, outsider, fleet):
    response = client_for(outsider).get(LIST, {"q": "db"})
    assert names(response) == []


# --- the check page -------------------------------------------------------------------------------


def test_check_page_has_every_snippet_with_the_checks_url(owner_client, check):
    body = owner_client.get(detail(check)).text
    url = f"https://tocsin.example/ping/{check.ping_token}"
    for snippet in ("success", "cron", "wget", "python", "powershell", "start", "fail", "wrapper"):
        block = re.search(rf'<pre id="snippet-{snippet}">(.*?)</pre>', body, re.S)
        assert block, snippet
        assert url in block.group(1), snippet
        assert f'data-copy="snippet-{snippet}"' in body
    assert f"wget -q -T 10 -t 5 -O /dev/null {url}" in body
    assert f'urllib.request.urlopen("{url}", timeout=10)' in body
    assert f'Invoke-RestMethod -Uri "{url}"' in body


def test_check_page_shows_uptime_computed_from_flips(owner_client, check):
    now = database_now()
    Flip.objects.create(
        owner=check,
        from_status="new",
        to_status="up",
        happened_at=now - timedelta(days=40),
        reason="first_ping",
    )
    Flip.objects.create(
        owner=check,
        from_status="up",
        to_status="down",
        happened_at=now - timedelta(days=1),
        reason="missed",
    )
    Flip.objects.create(owner=check, from_status="down", to_status="up",
                        happened_at=now - timedelta(hours=12), reason="recovered")  # fmt: skip
    body = owner_client.get(detail(check)).text
    seven = re.search(r'id="uptime-7"><dt>[^<]*</dt><dd><strong>([^<]+)</strong>', body).group(1)
    thirty = re.search(r'id="uptime-30"><dt>[^<]*</dt><dd><strong>([^<]+)</strong>', body).group(1)
    # Down for 12 hours: 1 - 0.5/7 and 1 - 0.5/30, rounded down to hundredths.
    assert seven == "92.85 %"
    assert thirty == "98.33 %"


def test_new_check_has_no_uptime_data(owner_client, check):
    body = owner_client.get(detail(check)).text
    assert re.search(r'id="uptime-7"><dt>[^<]*</dt><dd><strong>no data</strong>', body)


def test_check_page_draws_run_durations_as_svg(owner_client, check):
    now = database_now()
    for minutes, outcome in ((2, "succeeded"), (4, "failed"), (1, "succeeded")):
        Run.objects.create(
            owner=check,
            started_at=now - timedelta(hours=minutes),
            ended_at=now,
            duration=timedelta(minutes=minutes),
            outcome=outcome,
        )
    body = owner_client.get(detail(check)).text
    svg = re.search(r'<svg id="duration-chart".*?</svg>', body, re.S).group(0)
    assert 'role="img"' in svg and "<title" in svg
    assert svg.count("<rect") == 3
    assert 'class="bar bar-failed"' in svg
    assert "the longest took 4 min 0 s" in svg
    # Axis labels: a round top of 4 minutes, and the oldest and newest runs' times.
    assert re.search(r'class="chart-tick"[^>]*>4 min</span>', body)
    assert 'id="chart-first"' in body and 'id="chart-last"' in body
    assert "failed</title>" in svg  # each bar says its outcome in words


def test_no_chart_without_runs(owner_client, check):
    assertNotContains(owner_client.get(detail(check)), "duration-chart")


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_admins_see_the_check_controls(request, check, who):
    body = client_for(request.getfixturevalue(who)).get(detail(check)).text
    for control in ('id="pause-check"', 'id="regenerate-check"', 'id="delete-check"'):
        assert control in body


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_see_no_check_controls(request, check, who):
    body = client_for(request.getfixturevalue(who)).get(detail(check)).text
    for control in ("pause-check", "resume-check", "regenerate-check", "delete-check"):
        assert control not in body


# --- pause and resume -----------------------------------------------------------------------------


def test_admin_pauses_and_resumes_in_place(admin, check):
    client = client_for(admin)
    response = client.post(action(check, "pause"), **HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="check-status"')
    assert 'data-status="paused"' in response.text
    assert 'id="resume-check"' in response.text
    check.refresh_from_db()
    assert check.status == Check.Status.PAUSED
    assert check.flips.filter(to_status="paused").exists()

    response = client.post(action(check, "resume"), **HTMX)
    assert 'id="pause-check"' in response.text
    check.refresh_from_db()
    assert check.status == Check.Status.NEW


def test_pausing_resolves_the_open_incident(admin, check):
    record_ping(ping=PingData(kind="fail", method="POST"), token=check.ping_token)
    sweep_due_checks(now=database_now())
    incident = Incident.objects.get(owner=check)
    client_for(admin).post(action(check, "pause"))
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.PAUSED


def test_plain_form_pause_redirects_to_the_check(admin, check):
    response = client_for(admin).post(action(check, "pause"))
    assert response.status_code == 302
    assert response.url == detail(check)


def snapshot(check):
    check.refresh_from_db()
    return (check.status, check.ping_token, Flip.objects.count(), Check.objects.count())


def all_posts(check):
    return [
        (action(check, "pause"), {}),
        (action(check, "resume"), {}),
        (regenerate(check), {}),
        (delete(check), {"confirm_name": check.name}),
    ]


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_get_403_on_every_check_action(request, check, who):
    client = client_for(request.getfixturevalue(who))
    before = snapshot(check)
    for url, data in all_posts(check):
        assert client.post(url, data, **HTMX).status_code == 403, url
    assert snapshot(check) == before


def test_outsider_gets_404_on_every_check_action(outsider, check):
    client = client_for(outsider)
    before = snapshot(check)
    for url, data in all_posts(check):
        response = client.post(url, data)
        assert response.status_code == 404, url
        assert check.name not in response.text
    assert snapshot(check) == before


def test_anonymous_check_actions_go_to_login(client, check):
    before = snapshot(check)
    for url, data in all_posts(check):
        response = client.post(url, data)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert snapshot(check) == before


@pytest.mark.parametrize("name", ["remove", "PAUSE", "x" * 300, "%3Cscript%3E"])
def test_unknown_check_action_is_404(admin, check, name):
    before = snapshot(check)
    url = f"/checks/{check.id}/{name}/"
    assert client_for(admin).post(url).status_code in (404, 405)
    assert snapshot(check) == before


def test_check_actions_need_post_and_csrf(admin, check):
    before = snapshot(check)
    client = client_for(admin)
    for url, _ in all_posts(check):
        assert client.get(url).status_code == 405
    strict = client_for(admin, enforce_csrf_checks=True)
    for url, data in all_posts(check):
        assert strict.post(url, data).status_code == 403
    assert snapshot(check) == before


# --- a new ping URL -------------------------------------------------------------------------------


def test_regenerating_moves_the_check_to_a_new_uuid_and_the_old_one_stops_working(admin, check):
    # One identity: the ping URL's UUID is the check's id, so a new ping URL is a new id; its
    # history, dependencies and the silences naming it follow.
    old = check.id
    record_ping(ping=PingData(kind="success", method="GET"), token=old)
    parent = CheckFactory(team=check.team)
    check.depends_on.add(parent)
    silence = Silence.objects.create(
        team=check.team,
        starts_at=database_now(),
        ends_at=database_now() + timedelta(hours=1),
        matchers={"check_ids": [str(old), str(parent.id)]},
        comment="window",
        created_at=database_now(),
    )
    response = client_for(admin).post(regenerate(check), **HTMX)
    assert response.status_code == 200
    moved = Check.objects.get(name=check.name)
    assert moved.id != old
    assert response["HX-Redirect"] == detail(moved)
    assert not Check.objects.filter(id=old).exists()
    assert not record_ping(ping=PingData(kind="success", method="GET"), token=old)
    assert record_ping(ping=PingData(kind="success", method="GET"), token=moved.id)
    assert moved.pings.count() == 2
    assert list(moved.depends_on.all()) == [parent]
    silence.refresh_from_db()
    assert silence.matchers["check_ids"] == sorted([str(moved.id), str(parent.id)])
    page = client_for(admin).get(detail(moved)).text
    assert str(moved.id) in page and str(old) not in page
    assert client_for(admin).get(detail(check)).status_code == 404


# --- delete ---------------------------------------------------------------------------------------


def test_delete_with_the_right_name_removes_the_check_and_its_history(admin, check):
    record_ping(ping=PingData(kind="fail", method="POST"), token=check.ping_token)
    sweep_due_checks(now=database_now())
    client = client_for(admin)
    response = client.post(delete(check), {"confirm_name": check.name}, **HTMX)
    assert response["HX-Redirect"] == LIST
    assert not Check.objects.filter(id=check.id).exists()
    assert not Ping.objects.exists() and not Incident.objects.exists()
    assertContains(client.get(LIST), "Deleted the check")
    assert client.get(detail(check)).status_code == 404


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "nightly", "NIGHTLY-BACKUP", "x" * 10_000, "<script>alert(1)</script>", None],
    ids=["empty", "blank", "partial", "wrong case", "oversized", "hostile", "missing"],
)
def test_delete_without_the_exact_name_changes_nothing_and_says_why(admin, check, typed):
    client = client_for(admin)
    data = {} if typed is None else {"confirm_name": typed}
    response = client.post(delete(check), data)
    assert response.status_code == 302
    assert Check.objects.filter(id=check.id).exists()
    page = client.get(detail(check))
    assertContains(page, "Nothing was deleted: type the check")
    assert "<script>alert(1)</script>" not in page.text


# --- incidents ------------------------------------------------------------------------------------


@pytest.fixture
def incidents(team, check):
    """One incident in each state, on three checks of the team."""
    now = database_now()
    other = CheckFactory(team=team, name="payroll")
    third = CheckFactory(team=team, name="mailer")
    return {
        "open": Incident.objects.create(owner=check, kind="missed_heartbeat", opened_at=now),
        "acknowledged": Incident.objects.create(
            owner=other, kind="failure_signal", opened_at=now, state="acknowledged"
        ),
        "resolved": Incident.objects.create(
            owner=third, kind="hung", opened_at=now - timedelta(days=1), state="resolved",
            resolved_at=now, resolution="recovered",
        ),
    }  # fmt: skip


def incident_ids(response) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="incident-(\d+)">', response.text)]


@pytest.mark.parametrize("shown", ["open", "acknowledged", "resolved"])
def test_incident_lists_by_state(owner_client, incidents, shown):
    response = owner_client.get(INCIDENTS, {"state": shown})
    assert incident_ids(response) == [incidents[shown].id]
    assert f'id="tab-{shown}" href="?state={shown}" aria-current="page"' in response.text
    assertContains(response, f'href="{detail(incidents[shown].owner)}">')


def test_incident_list_defaults_to_open_and_counts_each_list(owner_client, incidents):
    response = owner_client.get(INCIDENTS)
    assert incident_ids(response) == [incidents["open"].id]
    for label in ("Open", "Acknowledged", "Resolved"):
        assertContains(response, f'{label} <span class="count">(1)</span>')


@pytest.mark.parametrize("value", ["exploded", "<script>", "x" * 5000, ""])
def test_unknown_incident_list_says_so_and_shows_open(owner_client, incidents, value):
    response = owner_client.get(INCIDENTS, {"state": value})
    assert response.status_code == 200
    assert incident_ids(response) == [incidents["open"].id]
    if value:
        assertContains(response, "Unknown list; showing open incidents.")
    assert "<script>" not in response.text.split("<main", 1)[1]


def test_incident_list_partial_for_polling(owner_client, incidents):
    response = owner_client.get(INCIDENTS, {"state": "acknowledged"}, **HTMX)
    assert response.text.lstrip().startswith('<div id="incident-table"')
    assert "every 10s" in response.text
    assert f'hx-get="{INCIDENTS}?state=acknowledged"' in response.text


def test_incident_list_is_team_scoped(client, outsider, incidents):
    response = client_for(outsider).get(INCIDENTS, {"state": "open"})
    assert incident_ids(response) == []
    assert "nightly-backup" not in response.text


def test_viewer_sees_incidents_without_buttons(client, viewer, incidents):
    response = client_for(viewer).get(INCIDENTS)
    assert incident_ids(response) == [incidents["open"].id]
    assertNotContains(response, "Acknowledge</button>")


def test_acknowledging_from_the_list_returns_the_list_row_with_its_check(member, incidents):
    incident = incidents["open"]
    url = reverse("dashboard:incident-action", args=[incident.id, "acknowledge"])
    response = client_for(member).post(url, {"show_check": "1"}, **HTMX)
    assert response.status_code == 200
    assert f'href="{detail(incident.owner)}">nightly-backup</a>' in response.text
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED


def test_incident_page_shows_its_timeline(owner_client, member, check):
    record_ping(ping=PingData(kind="fail", method="POST"), token=check.ping_token)
    sweep_due_checks(now=database_now())
    incident = Incident.objects.get(owner=check)
    acknowledge_incident(incident_id=incident.id, user=member, now=database_now())
    body = owner_client.get(reverse("dashboard:incident-detail", args=[incident.id])).text
    timeline = re.search(r'<ol class="timeline" id="incident-timeline">(.*?)</ol>', body, re.S)
    entries = re.findall(r"<li[^>]*>.*?</li>", timeline.group(1), re.S)
    assert len([e for e in entries if 'data-kind="opened"' in e]) == 1
    acknowledged = [e for e in entries if 'data-kind="acknowledged"' in e]
    assert len(acknowledged) == 1 and "bob" in acknowledged[0]


def test_outsider_gets_404_on_the_incident_list_actions(client, outsider, incidents):
    incident = incidents["open"]
    for name in ("acknowledge", "resolve"):
        url = reverse("dashboard:incident-action", args=[incident.id, name])
        assert client_for(outsider).post(url, {"show_check": "1"}).status_code == 404
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED


def test_nav_links_on_every_page(owner_client, check):
    body = owner_client.get(detail(check)).text
    assert f'href="{INCIDENTS}">Incidents</a>' in body
    assert f'href="{LIST}">Checks</a>' in body


def test_urlencode_of_filters_round_trips(owner_client, fleet):
    # A pushed filter URL (as htmx writes it, with every field) opens the same list.
    query = urlencode({"q": "", "status": "", "tag": "db", "environment": "", "sort": "name"})
    assert [n for n in names(owner_client.get(f"{LIST}?{query}"))] == ["db-backup", "db-vacuum"]
