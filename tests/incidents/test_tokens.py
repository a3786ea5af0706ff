"""Signed action tokens (apps/incidents/tokens.py) and the services that spend them: bound to
one incident, one action and one recipient, expiring, single-use."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.db import connection

from apps.incidents.models import Incident, UsedActionToken
from apps.incidents.services import IncidentActionError, acknowledge_incident
from apps.incidents.tokens import SALT, InvalidToken, make_action_token, read_action_token
from apps.notifications.links import ActionNotAllowed, inspect_action_token, perform_action_token
from apps.teams.models import Membership
from tests.escalation.helpers import open_for

WEEK = timedelta(days=7)


@pytest.fixture
def incident(check, t0):
    return Incident.objects.create(
        owner=check, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=t0, details={}
    )


def token_for(incident, user, action="acknowledge"):
    return make_action_token(incident_id=incident.id, action=action, user_id=user.id)


def flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def assert_unchanged(incident):
    incident.refresh_from_db()
    assert incident.state == Incident.State.TRIGGERED
    assert incident.acknowledged_by is None
    assert incident.resolved_by is None
    assert not UsedActionToken.objects.exists()


# --- reading tokens ------------------------------------------------------------------------


def test_token_round_trips_its_claim(incident, member):
    claim = read_action_token(token_for(incident, member, "resolve"))
    assert (claim.incident_id, claim.action, claim.user_id) == (incident.id, "resolve", member.id)
    assert len(claim.nonce) >= 16


def test_each_token_has_its_own_nonce(incident, member):
    first, second = token_for(incident, member), token_for(incident, member)
    assert first != second
    assert read_action_token(first).nonce != read_action_token(second).nonce


def test_token_is_url_safe_and_short(incident, member):
    token = token_for(incident, member)
    assert len(token) < 200
    assert all(c.isalnum() or c in "-_:" for c in token)


def test_unknown_action_cannot_be_signed(incident, member):
    with pytest.raises(ValueError, match="unknown action"):
        make_action_token(incident_id=incident.id, action="delete", user_id=member.id)


@pytest.mark.parametrize("part", ["payload", "timestamp", "signature"])
def test_tampered_token_is_refused(incident, member, part):
    token = token_for(incident, member)
    payload, _timestamp, _signature = token.split(":")
    index = {"payload": 5, "timestamp": len(payload) + 2, "signature": len(token) - 3}[part]
    with pytest.raises(InvalidToken, match="altered"):
        read_action_token(flip(token, index))


def test_token_for_another_incident_cannot_be_forged_by_editing_the_payload(incident, member):
    token = token_for(incident, member)
    _payload, rest = token.split(":", 1)
    other = signing.dumps(
        {"i": incident.id + 1, "a": "acknowledge", "u": member.id, "n": "x"},
        salt=SALT,
        compress=False,
    )
    with pytest.raises(InvalidToken, match="altered"):
        read_action_token(f"{other.split(':', 1)[0]}:{rest}")


def test_value_signed_for_another_purpose_is_refused(incident, member, settings):
    # Same secret key, another salt (as for a session or a password reset value).
    foreign = signing.dumps({"i": incident.id, "a": "acknowledge", "u": member.id, "n": "x"})
    with pytest.raises(InvalidToken, match="altered"):
        read_action_token(foreign)


def test_token_signed_with_another_secret_key_is_refused(incident, member, settings):
    token = token_for(incident, member)
    settings.SECRET_KEY = "another-secret-key-" * 3
    with pytest.raises(InvalidToken, match="altered"):
        read_action_token(token)


def test_token_survives_a_key_rotation_listed_in_fallbacks(incident, member, settings):
    old_key = settings.SECRET_KEY
    token = token_for(incident, member)
    settings.SECRET_KEY = "the-new-secret-key-" * 3
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert read_action_token(token).incident_id == incident.id


def test_token_expires_after_its_max_age(incident, member, settings):
    settings.ACTION_TOKEN_MAX_AGE = WEEK
    with time_machine.travel("2026-11-02 03:00:00+00:00", tick=False) as traveller:
        token = token_for(incident, member)
        traveller.shift(WEEK - timedelta(minutes=1))
        assert read_action_token(token).incident_id == incident.id
        traveller.shift(timedelta(minutes=2))
        with pytest.raises(InvalidToken, match="expired"):
            read_action_token(token)


def test_max_age_in_the_past_means_expired(incident, member):
    with pytest.raises(InvalidToken, match="expired"):
        read_action_token(token_for(incident, member), max_age=timedelta(seconds=-1))


@pytest.mark.parametrize(
    "payload",
    [
        {"a": "acknowledge", "u": 1, "n": "x"},
        {"i": "seven", "a": "acknowledge", "u": 1, "n": "x"},
        {"i": None, "a": "acknowledge", "u": 1, "n": "x"},
        {"i": 1, "a": "acknowledge", "u": [1], "n": "x"},
        {"i": 1, "a": "delete", "u": 1, "n": "x"},
        {"i": 1, "a": "", "u": 1, "n": "x"},
        ["i", 1],
        "acknowledge",
        42,
    ],
    ids=[
        "no-incident",
        "incident-not-a-number",
        "incident-null",
        "user-a-list",
        "unknown-action",
        "empty-action",
        "a-list",
        "a-string",
        "a-number",
    ],
)
def test_genuinely_signed_but_malformed_payload_is_refused(payload):
    token = signing.dumps(payload, salt=SALT, compress=False)
    with pytest.raises(InvalidToken, match="not valid"):
        read_action_token(token)


@pytest.mark.parametrize(
    "token",
    ["", "abc", ":", "::", "a:b:c", "a" * 400, "é:ü:ß", "\x00", "eyJpIjoxfQ:1:"],
    ids=["empty", "word", "colon", "colons", "three-parts", "long", "non-ascii", "nul", "no-sig"],
)
def test_garbage_is_refused(db, token):
    with pytest.raises(InvalidToken):
        read_action_token(token)


# --- spending tokens -----------------------------------------------------------------------


def test_inspect_writes_nothing(incident, member):
    token = token_for(incident, member)
    for _ in range(3):
        found = inspect_action_token(token)
        assert (found.incident, found.user, found.claim.action) == (incident, member, "acknowledge")
    assert_unchanged(incident)


def test_perform_acknowledges_as_the_recipient_once(incident, member, t0):
    token = token_for(incident, member)
    perform_action_token(token, now=t0)
    incident.refresh_from_db()
    assert incident.state == Incident.State.ACKNOWLEDGED
    assert (incident.acknowledged_by, incident.acknowledged_at) == (member, t0)
    assert UsedActionToken.objects.count() == 1

    with pytest.raises(IncidentActionError, match="already been used"):
        perform_action_token(token, now=t0 + timedelta(minutes=1))
    with pytest.raises(IncidentActionError, match="already been used"):
        inspect_action_token(token)
    incident.refresh_from_db()
    assert incident.acknowledged_at == t0


def test_perform_resolves_by_hand(incident, member, t0):
    perform_action_token(token_for(incident, member, "resolve"), now=t0)
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution == Incident.Resolution.MANUAL
    assert (incident.resolved_by, incident.resolved_at) == (member, t0)


def test_refused_action_does_not_spend_the_token(incident, member, owner, t0):
    """Acknowledging an incident someone already acknowledged fails and rolls back whole: the
    nonce is not recorded, and the recipient's resolve link still works."""
    acknowledge_incident(incident_id=incident.id, user=owner, now=t0)
    with pytest.raises(IncidentActionError, match="already acknowledged"):
        perform_action_token(token_for(incident, member), now=t0)
    assert not UsedActionToken.objects.exists()
    incident.refresh_from_db()
    assert incident.acknowledged_by == owner

    perform_action_token(token_for(incident, member, "resolve"), now=t0)
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


def test_token_of_a_resolved_incident_is_refused(incident, member, t0):
    perform_action_token(token_for(incident, member, "resolve"), now=t0)
    for action in ("acknowledge", "resolve"):
        with pytest.raises(IncidentActionError, match="already resolved"):
            perform_action_token(token_for(incident, member, action), now=t0)
    assert UsedActionToken.objects.count() == 1


def test_token_of_a_deleted_user_is_refused(incident, member, t0):
    token = token_for(incident, member)
    member.delete()
    with pytest.raises(InvalidToken, match="no longer points"):
        perform_action_token(token, now=t0)
    assert_unchanged(incident)


def test_token_of_a_deactivated_user_is_refused(incident, member, t0):
    token = token_for(incident, member)
    member.is_active = False
    member.save()
    with pytest.raises(InvalidToken, match="no longer points"):
        perform_action_token(token, now=t0)
    assert_unchanged(incident)


def test_token_of_a_deleted_incident_is_refused(incident, member, t0):
    token = token_for(incident, member)
    incident.delete()
    with pytest.raises(InvalidToken, match="no longer points"):
        perform_action_token(token, now=t0)
    assert not UsedActionToken.objects.exists()


def test_token_of_someone_who_left_the_team_is_refused(incident, member, t0):
    token = token_for(incident, member)
    Membership.objects.filter(user=member).delete()
    with pytest.raises(ActionNotAllowed):
        perform_action_token(token, now=t0)
    assert_unchanged(incident)


def test_token_of_a_viewer_is_refused(incident, viewer, t0):
    # Viewers get the email but may not act in the dashboard; a link must not let them.
    with pytest.raises(ActionNotAllowed):
        perform_action_token(token_for(incident, viewer), now=t0)
    assert_unchanged(incident)


def test_token_of_a_member_demoted_to_viewer_is_refused(incident, member, t0):
    token = token_for(incident, member)
    Membership.objects.filter(user=member).update(role=Membership.Role.VIEWER)
    with pytest.raises(ActionNotAllowed):
        perform_action_token(token, now=t0)
    assert_unchanged(incident)


def test_token_of_a_member_of_another_team_is_refused(incident, outsider, t0):
    # Signed by us, but never sent: an incident id and a user id that do not belong together.
    with pytest.raises(ActionNotAllowed):
        perform_action_token(token_for(incident, outsider), now=t0)
    assert_unchanged(incident)


@pytest.mark.django_db(transaction=True)
def test_a_double_click_racing_itself_acts_once(check, member, t0):
    incident = open_for(check, t0)  # member is told, so member hears of the resolution
    token = token_for(incident, member, "resolve")
    barrier = threading.Barrier(2)
    outcomes = []

    def click():
        try:
            barrier.wait()
            perform_action_token(token, now=t0)
            outcomes.append("done")
        except Exception as exc:
            outcomes.append(f"{type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 2
    assert outcomes.count("done") == 1
    (refusal,) = [outcome for outcome in outcomes if outcome != "done"]
    # Which refusal depends on where the loser was when the winner committed: before its
    # nonce check, or between that and reading the incident.
    assert refusal in {
        "IncidentActionError: This link has already been used.",
        "IncidentActionError: This incident is already resolved.",
    }
    assert UsedActionToken.objects.count() == 1
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    # One resolution, one recovery email.
    assert incident.notifications.filter(event="resolved").count() == 1
