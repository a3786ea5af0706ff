"""Notes on an incident's timeline: members add them from the incident page (htmx or a plain
form), viewers and other teams cannot, and what is written is shown escaped, with its author
and time."""

import pytest
from django.test import Client

from apps.incidents.models import Incident, IncidentEvent
from apps.incidents.services import MAX_NOTE_LENGTH
from apps.teams.models import UserSettings

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def incident(check, t0):
    return Incident.objects.create(
        owner=check, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=t0, details={}
    )


def notes_url(incident):
    return f"/incidents/{incident.id}/notes/"


def notes(incident):
    return list(incident.events.filter(kind=IncidentEvent.Kind.NOTE))


def test_member_adds_a_note_that_the_timeline_shows_with_author_and_time(client, member, incident):
    client.force_login(member)
    response = client.post(
        notes_url(incident), {"text": "  Restarted the db.\nWatching.  "}, **HTMX
    )
    assert response.status_code == 200
    assert "note-added" in response["HX-Trigger"]  # the timeline refreshes at once
    assert '<textarea id="note-text"' in response.text and "Restarted" not in response.text
    (note,) = notes(incident)
    assert note.detail == {"text": "Restarted the db.\nWatching.", "by": "bob", "by_id": member.id}
    page = client.get(f"/incidents/{incident.id}/").text
    assert "Note by bob: Restarted the db.<br>Watching." in page
    assert f'<time datetime="{note.at.isoformat()}">' in page


def test_note_time_is_in_the_readers_zone(client, member, incident):
    UserSettings.objects.update_or_create(user=member, defaults={"display_timezone": "Europe/Riga"})
    client.force_login(member)
    client.post(notes_url(incident), {"text": "checking"})
    page = client.get(f"/incidents/{incident.id}/").text
    assert "Note by bob: checking" in page
    assert "EET" in page or "EEST" in page


def test_plain_form_post_redirects_to_the_incident(client, owner, incident):
    client.force_login(owner)
    response = client.post(notes_url(incident), {"text": "on it"})
    assert response.status_code == 302 and response["Location"] == f"/incidents/{incident.id}/"
    assert len(notes(incident)) == 1


def test_hostile_html_is_kept_as_text_and_shown_escaped(client, member, incident):
    client.force_login(member)
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    client.post(notes_url(incident), {"text": hostile}, **HTMX)
    assert notes(incident)[0].detail["text"] == hostile
    page = client.get(f"/incidents/{incident.id}/").text
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"text": ""}, "empty"),
        ({"text": "   \n\t "}, "empty"),
        ({}, "empty"),
        ({"text": "x" * (MAX_NOTE_LENGTH + 1)}, f"at most {MAX_NOTE_LENGTH} characters"),
        ({"text": "a\x00b"}, "NUL"),
    ],
    ids=["empty", "blank", "missing", "oversized", "nul"],
)
def test_refused_notes_answer_422_with_the_reason_and_keep_the_text(
    client, member, incident, data, reason
):
    client.force_login(member)
    response = client.post(notes_url(incident), data, **HTMX)
    assert response.status_code == 422
    assert reason in response.text and 'id="note-error"' in response.text
    assert notes(incident) == []


def test_refused_note_without_htmx_says_why_on_the_incident_page(client, member, incident):
    client.force_login(member)
    response = client.post(notes_url(incident), {"text": ""}, follow=True)
    assert "The note was not added: Write something" in response.text
    assert notes(incident) == []


def test_exactly_the_longest_note_is_accepted(client, member, incident):
    client.force_login(member)
    assert client.post(notes_url(incident), {"text": "y" * MAX_NOTE_LENGTH}).status_code == 302
    assert len(notes(incident)[0].detail["text"]) == MAX_NOTE_LENGTH


def test_viewer_may_not_add_notes_nor_sees_the_form(client, viewer, incident):
    client.force_login(viewer)
    assert client.post(notes_url(incident), {"text": "hi"}).status_code == 403
    assert 'id="note-form"' not in client.get(f"/incidents/{incident.id}/").text
    assert notes(incident) == []


def test_other_teams_user_gets_404(client, outsider, incident):
    client.force_login(outsider)
    assert client.post(notes_url(incident), {"text": "hi"}).status_code == 404
    assert notes(incident) == []


def test_unknown_incident_is_404(client, member, incident):
    client.force_login(member)
    assert client.post("/incidents/999999/notes/", {"text": "hi"}).status_code == 404


def test_get_is_refused(client, member, incident):
    client.force_login(member)
    assert client.get(notes_url(incident)).status_code == 405


def test_post_without_csrf_token_is_refused(member, incident):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(notes_url(incident), {"text": "hi"}).status_code == 403
    assert notes(incident) == []


def test_logged_out_post_adds_nothing(client, incident):
    response = client.post(notes_url(incident), {"text": "hi"})
    assert response.status_code == 302 and "/login" in response["Location"]
    assert notes(incident) == []
