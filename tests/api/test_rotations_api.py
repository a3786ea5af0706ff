"""/api/tocsin/v1/rotations/: rotations (ordered members, handoff time, zone, cadence) with the
dashboard form's rules, their overrides, who is on call now or at a given time, deleting a
rotation in use, permissions and bad input."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.escalation.models import EscalationPolicy, EscalationStep, Rotation, RotationOverride
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.flush import flush_due_groups
from tests.factories import MembershipFactory

ROTATIONS = "/api/tocsin/v1/rotations/"


@pytest.fixture
def carol(team):
    return MembershipFactory(team=team, user__username="carol").user


def rotation_body(*members, **changes):
    return {
        "name": "Primary on-call",
        "timezone": "Europe/Riga",
        "cadence": "weekly",
        "handoff_time": "09:00",
        "start_date": "2026-11-02",
        "members": [m.id for m in members],
    } | changes


def create(api, *members, **changes):
    response = api.post(ROTATIONS, rotation_body(*members, **changes))
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_rotation_is_created_with_members_in_order_and_read_back(api, team, owner, member):
    body = create(api, member, owner)
    rotation = Rotation.objects.get(id=body["id"])
    assert rotation.team == team
    assert [m.user for m in rotation.members.all()] == [member, owner]
    assert body == {
        "id": rotation.id,
        "name": "Primary on-call",
        "timezone": "Europe/Riga",
        "cadence": "weekly",
        "handoff_time": "09:00",
        "start_date": "2026-11-02",
        "members": [member.id, owner.id],
        "created_at": body["created_at"],
    }
    assert api.get(f"{ROTATIONS}{rotation.id}/").json() == body
    assert api.get(ROTATIONS).json()["results"] == [body]


def test_put_replaces_and_patch_changes_only_what_it_names(api, owner, member, carol):
    body = create(api, owner, member)
    url = f"{ROTATIONS}{body['id']}/"
    patched = api.patch(url, {"members": [carol.id, owner.id], "cadence": "daily"})
    assert patched.status_code == 200, patched.json()
    assert patched.json()["members"] == [carol.id, owner.id]
    assert (patched.json()["cadence"], patched.json()["timezone"]) == ("daily", "Europe/Riga")
    replaced = api.put(
        url,
        {
            "name": "Secondary",
            "handoff_time": "18:30",
            "start_date": "2027-01-04",
            "members": [member.id],
        },
    )
    assert replaced.status_code == 200, replaced.json()
    # Left out of the PUT: the timezone and cadence go back to their defaults.
    assert {k: replaced.json()[k] for k in ("name", "timezone", "cadence", "handoff_time")} == {
        "name": "Secondary",
        "timezone": "UTC",
        "cadence": "weekly",
        "handoff_time": "18:30",
    }
    rotation = Rotation.objects.get()
    assert [m.user_id for m in rotation.members.all()] == [member.id]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"members": []}, "members"),
        ({"members": [10**12]}, "members"),
        ({"members": ["alice"]}, "members"),
        ({"members": [1] * 51}, "members"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"handoff_time": "25:99"}, "handoff_time"),
        ({"handoff_time": 900}, "handoff_time"),
        ({"handoff_time": "09:00+02:00"}, "handoff_time"),
        ({"cadence": "hourly"}, "cadence"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "9999-12-31"}, "start_date"),
        ({"start_date": "0001-01-01"}, "start_date"),
        ({"name": "x" * 101}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "\ud800"}, "name"),
        ({"name": 7}, "name"),
        ({"owner": 1}, "owner"),
    ],
    ids=[
        "no-members",
        "unknown-member",
        "member-by-name",
        "too-many-members",
        "timezone",
        "timezone-path",
        "time",
        "time-as-number",
        "time-with-offset",
        "cadence",
        "date",
        "date-at-calendar-end",
        "date-at-calendar-start",
        "long-name",
        "blank-name",
        "lone-surrogate",
        "name-not-text",
        "unknown-field",
    ],
)
def test_bad_rotation_input_is_refused_with_the_field(api, owner, changes, field):
    response = api.post(ROTATIONS, rotation_body(owner, **changes))
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not Rotation.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"null", b'{"name": ', b'"rotation"'],
    ids=["empty", "list", "null", "truncated", "string"],
)
def test_malformed_bodies_are_refused(api, owner, raw):
    response = api.call("POST", ROTATIONS, raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] in ("invalid", "parse_error")
    assert not Rotation.objects.exists()


def test_oversized_body_is_refused(api, owner):
    body = rotation_body(owner, name="x" * 2_000_000)
    response = api.post(ROTATIONS, body)
    assert response.status_code == 413
    assert not Rotation.objects.exists()


def test_a_member_of_another_team_is_refused(api, owner, outsider):
    response = api.post(ROTATIONS, rotation_body(owner, outsider))
    assert response.status_code == 400
    assert response.json()["fields"]["members"] == [
        f"User {outsider.id} is not a member of this team."
    ]


def test_names_are_unique_per_team(api, other_api, owner, outsider):
    create(api, owner)
    clash = api.post(ROTATIONS, rotation_body(owner))
    assert (
        clash.status_code == 400 and "already has a rotation" in clash.json()["fields"]["name"][0]
    )
    # Another team may use the name.
    assert other_api.post(ROTATIONS, rotation_body(outsider)).status_code == 201


def test_deleting_a_rotation_a_policy_notifies_needs_force(api, team, owner):
    body = create(api, owner)
    policy = EscalationPolicy.objects.create(team=team, name="Nights")
    EscalationStep.objects.create(policy=policy, targets=[{"kind": "rotation", "id": body["id"]}])
    url = f"{ROTATIONS}{body['id']}/"
    refused = api.delete(url)
    assert refused.status_code == 409 and "Nights" in refused.json()["error"]
    assert Rotation.objects.exists()
    assert api.delete(f"{url}?force=true").status_code == 204
    assert not Rotation.objects.exists()


# --- who is on call -------------------------------------------------------------------------


def test_on_call_follows_the_schedule_and_names_the_next_handoffs(api, owner, member):
    # Weekly from Monday 2 Nov 2026 09:00 Riga (07:00 UTC): alice, then bob, then alice...
    body = create(api, owner, member)
    url = f"{ROTATIONS}{body['id']}/on-call/"
    first_week = api.get(url, data={"at": "2026-11-05T12:00:00Z"})
    assert first_week.status_code == 200, first_week.json()
    answer = first_week.json()
    assert (answer["user_id"], answer["username"], answer["override"]) == (owner.id, "alice", None)
    assert answer["at"] == "2026-11-05T12:00:00Z"
    assert [(h["at"], h["user_id"]) for h in answer["next_handoffs"][:2]] == [
        ("2026-11-09T07:00:00Z", member.id),
        ("2026-11-16T07:00:00Z", owner.id),
    ]
    assert len(answer["next_handoffs"]) == 5
    second_week = api.get(url, data={"at": "2026-11-09T07:00"}).json()  # no offset: UTC
    assert second_week["user_id"] == member.id
    before_start = api.get(url, data={"at": "2026-11-01T12:00:00+02:00"}).json()
    assert before_start["user_id"] is None and before_start["username"] is None


def test_on_call_without_a_time_is_now(api, owner, member):
    body = create(api, owner, start_date="2020-01-06")
    answer = api.get(f"{ROTATIONS}{body['id']}/on-call/").json()
    assert answer["user_id"] == owner.id
    at = datetime.fromisoformat(answer["at"])
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    "at",
    ["tomorrow", "2026-13-01T00:00", "0001-01-01T00:00+14:00", "9999-12-31T23:59", "1" * 41],
    ids=["words", "month-13", "calendar-start", "calendar-end", "oversized"],
)
def test_on_call_at_a_bad_time_is_400(api, owner, at):
    body = create(api, owner)
    response = api.get(f"{ROTATIONS}{body['id']}/on-call/", data={"at": at})
    assert response.status_code == 400, response.content
    assert "at" in response.json()["fields"]


# --- overrides ------------------------------------------------------------------------------


def test_an_override_puts_its_member_on_call_for_its_interval(api, owner, member):
    body = create(api, owner)
    overrides = f"{ROTATIONS}{body['id']}/overrides/"
    created = api.post(
        overrides,
        {
            "user_id": member.id,
            "starts_at": "2026-11-05T10:00:00+02:00",
            "ends_at": "2026-11-06T08:00:00Z",
        },
    )
    assert created.status_code == 201, created.json()
    override = RotationOverride.objects.get()
    assert (override.user, override.starts_at) == (member, datetime(2026, 11, 5, 8, tzinfo=UTC))
    assert created.json() == {
        "id": override.id,
        "user_id": member.id,
        "starts_at": "2026-11-05T08:00:00Z",
        "ends_at": "2026-11-06T08:00:00Z",
        "created_at": created.json()["created_at"],
    }
    on_call = f"{ROTATIONS}{body['id']}/on-call/"
    covered = api.get(on_call, data={"at": "2026-11-05T09:00:00Z"}).json()
    assert (covered["user_id"], covered["override"]["id"]) == (member.id, override.id)
    after = api.get(on_call, data={"at": "2026-11-06T08:00:00Z"}).json()
    assert (after["user_id"], after["override"]) == (owner.id, None)

    assert api.get(overrides).json()["results"] == [created.json()]
    one = f"{overrides}{override.id}/"
    assert api.get(one).json() == created.json()
    moved = api.put(
        one,
        {"user_id": owner.id, "starts_at": "2026-12-01T00:00Z", "ends_at": "2026-12-02T00:00Z"},
    )
    assert moved.status_code == 200, moved.json()
    override.refresh_from_db()
    assert (override.user, override.ends_at) == (owner, datetime(2026, 12, 2, tzinfo=UTC))
    assert api.delete(one).status_code == 204
    assert not RotationOverride.objects.exists()
    assert api.get(one).status_code == 404


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"ends_at": "2026-11-05T07:00:00Z"}, "ends_at"),
        ({"ends_at": "2026-11-05T08:00:00Z"}, "ends_at"),
        ({"starts_at": "soon"}, "starts_at"),
        ({"starts_at": "1999-12-31T00:00:00Z"}, "starts_at"),
        ({"ends_at": "9999-12-31T23:59:59Z"}, "ends_at"),
        ({"user_id": 10**12}, "user_id"),
        ({"user_id": "1"}, "user_id"),
        ({"user_id": None}, "user_id"),
        ({"note": "hi"}, "note"),
    ],
    ids=[
        "end-before-start",
        "empty-interval",
        "words",
        "before-2000",
        "calendar-end",
        "unknown-user",
        "id-as-text",
        "null-user",
        "unknown-field",
    ],
)
def test_bad_overrides_are_refused(api, owner, changes, field):
    body = create(api, owner)
    override = {
        "user_id": owner.id,
        "starts_at": "2026-11-05T08:00:00Z",
        "ends_at": "2026-11-06T08:00:00Z",
    } | changes
    response = api.post(f"{ROTATIONS}{body['id']}/overrides/", override)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not RotationOverride.objects.exists()


def test_an_override_for_another_teams_user_is_refused(api, owner, outsider):
    body = create(api, owner)
    response = api.post(
        f"{ROTATIONS}{body['id']}/overrides/",
        {"user_id": outsider.id, "starts_at": "2026-11-05T08:00Z", "ends_at": "2026-11-06T08:00Z"},
    )
    assert response.status_code == 400 and "user_id" in response.json()["fields"]


def test_an_override_is_found_only_through_its_own_rotation(api, owner):
    first, second = create(api, owner), create(api, owner, name="Other")
    created = api.post(
        f"{ROTATIONS}{first['id']}/overrides/",
        {"user_id": owner.id, "starts_at": "2026-11-05T08:00Z", "ends_at": "2026-11-06T08:00Z"},
    ).json()
    assert api.get(f"{ROTATIONS}{second['id']}/overrides/{created['id']}/").status_code == 404
    assert api.delete(f"{ROTATIONS}{second['id']}/overrides/{created['id']}/").status_code == 404
    assert RotationOverride.objects.count() == 1


# --- permissions ------------------------------------------------------------------------------


def test_read_only_key_reads_but_cannot_write(api, ro_api, owner, member):
    body = create(api, owner)
    url = f"{ROTATIONS}{body['id']}/"
    assert ro_api.get(url).status_code == 200
    assert ro_api.get(f"{url}on-call/").status_code == 200
    assert ro_api.get(f"{url}overrides/").status_code == 200
    assert ro_api.post(ROTATIONS, rotation_body(owner, name="Other")).status_code == 403
    assert ro_api.patch(url, {"name": "Renamed"}).status_code == 403
    assert ro_api.put(url, rotation_body(owner, name="Renamed")).status_code == 403
    override = {
        "user_id": member.id,
        "starts_at": "2026-11-05T08:00Z",
        "ends_at": "2026-11-06T08:00Z",
    }
    assert ro_api.post(f"{url}overrides/", override).status_code == 403
    assert ro_api.delete(url).status_code == 403
    assert Rotation.objects.get().name == "Primary on-call"
    assert not RotationOverride.objects.exists()


def test_other_teams_key_gets_404_and_no_key_401(api, other_api, anon_api, owner, outsider):
    body = create(api, owner)
    url = f"{ROTATIONS}{body['id']}/"
    override = api.post(
        f"{url}overrides/",
        {"user_id": owner.id, "starts_at": "2026-11-05T08:00Z", "ends_at": "2026-11-06T08:00Z"},
    ).json()
    assert other_api.get(url).status_code == 404
    assert other_api.get(f"{url}on-call/").status_code == 404
    assert other_api.patch(url, {"name": "Mine"}).status_code == 404
    assert other_api.put(url, rotation_body(outsider)).status_code == 404
    assert other_api.delete(f"{url}?force=true").status_code == 404
    assert other_api.get(f"{url}overrides/").status_code == 404
    assert other_api.delete(f"{url}overrides/{override['id']}/").status_code == 404
    assert other_api.get(ROTATIONS).json()["count"] == 0
    assert anon_api.get(url).status_code == 401
    assert Rotation.objects.get().name == "Primary on-call"
    assert RotationOverride.objects.count() == 1


# --- end to end ---------------------------------------------------------------------------------


def test_a_rotation_and_override_set_through_the_api_decide_who_gets_the_alert(
    api, team, owner, member, check, t0
):
    """Rotation, override and policy written as code through the API; the check fails, the real
    sweep, dispatch, flush and delivery run, and the email reaches whoever the API said."""
    rotation = create(api, owner, member, cadence="daily", start_date="2026-11-01")
    on_call_at_t0 = api.get(
        f"{ROTATIONS}{rotation['id']}/on-call/", data={"at": t0.isoformat()}
    ).json()
    assert on_call_at_t0["user_id"] == owner.id  # alice's shift, per the schedule
    cover = {
        "user_id": member.id,
        "starts_at": (t0 - timedelta(hours=1)).isoformat(),
        "ends_at": (t0 + timedelta(hours=1)).isoformat(),
    }
    assert api.post(f"{ROTATIONS}{rotation['id']}/overrides/", cover).status_code == 201
    policy = {
        "name": "Through the rotation",
        "is_default": True,
        "steps": [{"wait": 600, "targets": [{"kind": "rotation", "id": rotation["id"]}]}],
    }
    assert api.post("/api/tocsin/v1/escalation-policies/", policy).status_code == 201

    record_ping(
        ping=PingData(kind="fail", method="POST", exit_status=2),
        token=check.ping_token,
        now=t0,
    )
    sweep_due_checks(now=t0 + timedelta(seconds=1))
    later = t0 + timedelta(minutes=1)
    flush_due_groups(now=later)
    for delivery_id in due_delivery_ids(now=later):
        deliver(delivery_id=delivery_id, now=later, jitter=0)

    (email,) = mail.outbox
    assert email.to == [member.email]
    assert check.name in email.subject
