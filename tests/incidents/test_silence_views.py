"""Silencing an incident's check from the dashboard (POST /incidents/<id>/silence/): members and
up, in place with htmx, through the same service as the alert links. Bad input is a 400 that
changes nothing; a viewer gets 403, another team 404."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.clock import database_now
from apps.escalation.models import Silence
from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import acknowledge_incident, resolve_incident
from tests.escalation.helpers import open_for

HTMX = {"HTTP_HX_REQUEST": "true"}
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def incident(check):
    return open_for(check, database_now())


def silence_url(incident) -> str:
    return reverse("dashboard:incident-silence", args=[incident.id])


def client_for(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def silenced_events(incident) -> list[dict]:
    return list(
        IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.SILENCED)
        .order_by("at", "id")
        .values_list("detail", flat=True)
    )


@pytest.mark.parametrize(
    ("value", "hours"), [("1h", 1), ("4h", 4), ("24h", 24)], ids=["1h", "4h", "24h"]
)
def test_member_silences_the_check_in_place(member, check, incident, value, hours):
    before = database_now()
    response = client_for(member).post(silence_url(incident), {"duration": value}, **HTMX)
    after = database_now()
    assert response.status_code == 200
    body = response.content.decode().strip()
    assert body.startswith(f'<tr id="incident-{incident.id}">') and body.endswith("</tr>")
    silence = Silence.objects.get()
    assert silence.team_id == check.team_id
    assert silence.matchers == {"check_ids": [str(check.id)]}
    assert silence.created_by == member
    assert before <= silence.starts_at <= after
    assert silence.ends_at - silence.starts_at == timedelta(hours=hours)
    assert (
        silence.comment
        == f"Silenced for {hours} h from the dashboard about incident #{incident.id}."
    )
    incident.refresh_from_db()
    assert incident.hold == Incident.Hold.SILENCED and incident.silenced_by == silence
    assert incident.state == Incident.State.TRIGGERED  # silencing is not acknowledging
    # The row says so, with a link to where the silence can be expired early.
    assertContains(response, f'id="silenced-{incident.id}"')
    assertContains(response, f'silenced until <time datetime="{silence.ends_at:%Y-%m-%dT%H:%M}')
    assertContains(response, f'href="{reverse("escalation:silence-list")}#silence-{silence.id}"')
    assert [e["silence"] for e in silenced_events(incident)] == [silence.id]


def test_silencing_an_acknowledged_incident_is_shown_on_its_row_and_timeline(
    member, owner, incident
):
    acknowledge_incident(incident_id=incident.id, user=owner, now=database_now())
    response = client_for(member).post(silence_url(incident), {"duration": "4h"}, **HTMX)
    assert response.status_code == 200
    silence = Silence.objects.get()
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    # The engine does not hold an acknowledged incident, so the action records the event.
    events = silenced_events(incident)
    assert [(e["silence"], e["until"]) for e in events] == [
        (silence.id, silence.ends_at.isoformat())
    ]
    assertContains(response, "silenced until")
    page = client_for(member).get(reverse("dashboard:incident-detail", args=[incident.id]))
    assertContains(page, 'id="check-silenced"')
    assertContains(page, f"by silence #{silence.id}")
    assertContains(page, "Expire it early on the silences page")
    assertContains(page, f"Silenced by silence #{silence.id}")  # the timeline


def test_plain_form_post_redirects_to_the_incident_page(member, incident):
    response = client_for(member).post(silence_url(incident), {"duration": "1h"})
    assert response.status_code == 302
    assert response.url == reverse("dashboard:incident-detail", args=[incident.id])
    assert Silence.objects.count() == 1
    page = client_for(member).get(response.url)
    assertContains(page, "Expire it early on the silences page")  # the timeline's banner
    assertContains(page, 'data-state="triggered"')


def test_silencing_a_resolved_incident_is_refused_with_the_reason(member, owner, incident):
    resolve_incident(incident_id=incident.id, user=owner, now=database_now())
    response = client_for(member).post(silence_url(incident), {"duration": "1h"}, **HTMX)
    assert response.status_code == 409
    assertContains(response, "This incident is already resolved.", status_code=409)
    assert not Silence.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"duration": ""},
        {"duration": "2h"},
        {"duration": "1H"},
        {"duration": " 1h"},
        {"duration": "-1h"},
        {"duration": "3600"},
        {"duration": "1h" * 5000},
        {"duration": HOSTILE},
        {"duration": "1h\x00"},
    ],
    ids=[
        "missing",
        "empty",
        "unknown",
        "wrong-case",
        "padded",
        "negative",
        "seconds",
        "oversized",
        "hostile",
        "nul",
    ],
)
def test_bad_duration_is_a_400_that_changes_nothing(member, incident, data):
    response = client_for(member).post(silence_url(incident), data, **HTMX)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "Nothing was silenced: choose 1h, 4h or 24h."
    assert not Silence.objects.exists()
    incident.refresh_from_db()
    assert incident.hold == ""
    assert silenced_events(incident) == []


def test_viewer_sees_no_silence_buttons_and_a_direct_post_is_403(viewer, incident):
    client = client_for(viewer)
    page = client.get(reverse("dashboard:incident-detail", args=[incident.id]))
    assertNotContains(page, "Silence 1h")
    assertNotContains(page, silence_url(incident))
    response = client.post(silence_url(incident), {"duration": "1h"}, **HTMX)
    assert response.status_code == 403
    assert not Silence.objects.exists()


def test_member_sees_the_silence_buttons_as_htmx_forms(member, check, incident):
    for page in (
        reverse("dashboard:incident-detail", args=[incident.id]),
        reverse("dashboard:incident-list"),
        reverse("dashboard:check-detail", args=[check.id]),
    ):
        response = client_for(member).get(page)
        url = silence_url(incident)
        assertContains(response, f'hx-post="{url}" hx-target="#incident-{incident.id}"')
        for value in ("1h", "4h", "24h"):
            assertContains(
                response, f'name="duration" value="{value}" id="silence-{value}-{incident.id}"'
            )


def test_outsider_gets_404_and_nothing_is_silenced(outsider, incident):
    response = client_for(outsider).post(silence_url(incident), {"duration": "1h"}, **HTMX)
    assert response.status_code == 404
    assert not Silence.objects.exists()


def test_unknown_incident_is_404(member, incident):
    url = reverse("dashboard:incident-silence", args=[incident.id + 1000])
    assert client_for(member).post(url, {"duration": "1h"}).status_code == 404


def test_get_is_not_allowed(member, incident):
    assert client_for(member).get(silence_url(incident)).status_code == 405
    assert not Silence.objects.exists()


def test_anonymous_post_is_sent_to_log_in(client, incident):
    response = client.post(silence_url(incident), {"duration": "1h"})
    assert response.status_code == 302 and "/login/" in response.url
    response = client.post(silence_url(incident), {"duration": "1h"}, **HTMX)
    assert "/login/" in response["HX-Redirect"]
    assert not Silence.objects.exists()


def test_post_without_csrf_token_is_refused(member, incident):
    client = client_for(member, enforce_csrf_checks=True)
    response = client.post(silence_url(incident), {"duration": "1h"}, **HTMX)
    assert response.status_code == 403
    assert not Silence.objects.exists()


def test_incident_page_polls_its_status_and_summarises_it(member, owner, incident):
    url = reverse("dashboard:incident-detail", args=[incident.id])
    page = client_for(member).get(url)
    assertContains(page, f'hx-get="{url}" hx-trigger="every 10s')
    assertContains(page, 'data-status-summary="Incident triggered."')
    acknowledge_incident(incident_id=incident.id, user=owner, now=database_now())
    partial = client_for(member).get(url, **HTMX)
    body = partial.content.decode().strip()
    assert body.startswith('<div id="incident-status"')
    assert 'data-status-summary="Incident acknowledged by alice."' in body
    assert "<html" not in body
