"""The incident timeline on the incident page: every event in words, the hold (caused by a
parent, silenced by a silence) on top, hostile text escaped, other teams' incidents 404."""

from datetime import timedelta

import pytest

from apps.escalation.actions import create_silence
from apps.escalation.engine import escalate_due_incidents
from apps.incidents.models import IncidentEvent
from apps.incidents.services import acknowledge_incident, resolve_open_incident
from apps.incidents.timeline import DESCRIBE, describe_event
from tests.escalation.helpers import make_channel, make_policy, open_for
from tests.factories import CheckFactory

MIN = timedelta(minutes=1)


def page(client, incident) -> str:
    response = client.get(f"/incidents/{incident.id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_whole_story_is_on_the_incident_page(owner_client, team, owner, member, check, t0):
    chat = make_channel(team)
    make_policy(
        team,
        [(10, [("user", owner.id)]), (10, [("channel", chat.id)])],
        is_default=True,
        ack_timeout=timedelta(minutes=30),
    )
    incident = open_for(check, t0)
    escalate_due_incidents(now=t0 + 10 * MIN)
    acknowledge_incident(incident_id=incident.id, user=member, now=t0 + 12 * MIN)
    escalate_due_incidents(now=t0 + 42 * MIN)
    resolve_open_incident(
        check=check, resolved_at=t0 + 50 * MIN, now=t0 + 50 * MIN, resolution="recovered"
    )
    body = page(owner_client, incident)
    for line in [
        "Escalation policy: Primary",
        "Opened: missed heartbeat, severity warning",
        "Escalated to step 1 of 2: alice",
        "Escalated to step 2 of 2: channel ops-chat",
        "Acknowledged by bob",
        "Triggered again: acknowledged at 2 Nov 2026, 03:12 UTC",
        "Resolved: the check recovered",
    ]:
        assert line in body, line


def test_suppressed_incident_says_what_caused_it(owner_client, team, owner, t0):
    parent = CheckFactory(team=team, name="db-health", slug="db-health")
    child = CheckFactory(team=team, name="nightly-report", slug="nightly-report")
    child.depends_on.add(parent)
    make_policy(team, [(10, [("user", owner.id)])], is_default=True)
    parent_incident = open_for(parent, t0)
    incident = open_for(child, t0 + MIN)
    body = page(owner_client, incident)
    assert f'Caused by <a href="/incidents/{parent_incident.id}/">db-health</a>' in body
    assert f"Suppressed: caused by db-health (incident #{parent_incident.id})" in body


def test_silenced_incident_names_the_silence_and_escapes_its_comment(
    owner_client, team, owner, check, t0
):
    silence = create_silence(
        team_id=team.id,
        starts_at=t0 - MIN,
        ends_at=t0 + timedelta(hours=1),
        matchers={"whole_team": True},
        user=owner,
        comment='<img src=x onerror="alert(1)">',
        now=t0,
    )
    incident = open_for(check, t0)
    body = page(owner_client, incident)
    assert f"Silenced by silence #{silence.id}" in body
    assert "<img src=x" not in body and "&lt;img src=x" in body
    assert "until 2 Nov 2026, 04:00 UTC" in body


def test_outsider_gets_404_on_the_incident_page(client, outsider, check, t0):
    incident = open_for(check, t0)
    client.force_login(outsider)
    assert client.get(f"/incidents/{incident.id}/").status_code == 404


@pytest.mark.parametrize("kind", list(IncidentEvent.Kind))
def test_every_event_kind_has_words_and_survives_missing_details(kind):
    assert kind in DESCRIBE
    text = describe_event(IncidentEvent(kind=kind, detail={}))
    assert isinstance(text, str) and len(text) > 10


def test_unknown_kind_falls_back_to_its_name():
    assert describe_event(IncidentEvent(kind="something_new", detail={})) == "Something new"


def test_check_page_marks_a_held_incident(owner_client, team, owner, t0):
    parent = CheckFactory(team=team, name="db-health", slug="db-health")
    child = CheckFactory(team=team, name="nightly-report", slug="nightly-report")
    child.depends_on.add(parent)
    open_for(parent, t0)
    open_for(child, t0 + MIN)
    body = owner_client.get(f"/checks/{child.id}/").content.decode()
    assert 'data-hold="suppressed">held: caused by db-health' in body
