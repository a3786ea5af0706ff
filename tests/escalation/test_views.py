"""The escalation pages: policies (with steps added, reordered and removed), rotations and
overrides, silences (with the live preview and early expiry) and maintenance windows. Roles:
admins edit policies, rotations and windows; members may silence; viewers read. Another team's
object is a 404 everywhere; bad input is a 400 with the reason, and nothing is saved."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.escalation.models import (
    EscalationPolicy,
    EscalationStep,
    MaintenanceWindow,
    Rotation,
    RotationOverride,
    Silence,
)
from apps.teams.models import Membership
from tests.factories import CheckFactory, MembershipFactory

from .helpers import make_channel, make_policy

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="adam").user


@pytest.fixture
def as_user(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def policy(team, owner):
    return make_policy(team, [(10, [("user", owner.id)]), (20, [("team", team.id)])])


@pytest.fixture
def their_policy(other_team, outsider):
    return make_policy(other_team, [(10, [("user", outsider.id)])], name="Theirs")


def url(name, *args):
    return reverse(f"escalation:{name}", args=args)


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["overview", "policy-create", "rotation-create", "silence-list", "maintenance-list"]
)
def test_pages_need_a_login(client, team, name):
    response = client.get(url(name))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_overview_lists_only_the_teams_policies(as_user, viewer, policy, their_policy):
    body = as_user(viewer).get(url("overview")).content.decode()
    assert "Primary" in body and "Theirs" not in body
    assert "New policy" not in body  # viewers read only


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("policy-detail", "get"),
        ("policy-detail", "post"),
        ("policy-delete", "post"),
        ("step-add", "post"),
    ],
)
def test_another_teams_policy_is_404(as_user, owner, their_policy, name, method):
    client = as_user(owner)
    response = getattr(client, method)(url(name, their_policy.id))
    assert response.status_code == 404
    assert EscalationPolicy.objects.filter(id=their_policy.id).exists()


def test_another_teams_step_is_404_even_through_own_policy(as_user, owner, policy, their_policy):
    theirs = their_policy.steps.get()
    response = as_user(owner).post(url("step-change", policy.id, theirs.id, "remove"))
    assert response.status_code == 404
    assert EscalationStep.objects.filter(id=theirs.id).exists()


@pytest.mark.parametrize(
    ("name", "needs"),
    [
        ("rotation-detail", "get"),
        ("rotation-detail", "post"),
        ("override-add", "post"),
        ("rotation-delete", "post"),
    ],
)
def test_another_teams_rotation_is_404(as_user, owner, other_team, name, needs):
    rotation = Rotation.objects.create(
        team=other_team, name="Theirs", handoff_time="09:00", start_date="2026-11-01"
    )
    response = getattr(as_user(owner), needs)(url(name, rotation.id))
    assert response.status_code == 404
    assert Rotation.objects.filter(id=rotation.id, name="Theirs").exists()


def test_another_teams_override_is_404(as_user, owner, team, outsider, other_team, t0):
    rotation = Rotation.objects.create(
        team=other_team, name="Theirs", handoff_time="09:00", start_date="2026-11-01"
    )
    override = RotationOverride.objects.create(
        rotation=rotation, user=outsider, starts_at=t0, ends_at=t0 + timedelta(days=1)
    )
    mine = Rotation.objects.create(
        team=team, name="Mine", handoff_time="09:00", start_date="2026-11-01"
    )
    client = as_user(owner)
    assert client.post(url("override-delete", rotation.id, override.id)).status_code == 404
    # Through one's own rotation, another rotation's override is not found either.
    assert client.post(url("override-delete", mine.id, override.id)).status_code == 404
    assert RotationOverride.objects.filter(id=override.id).exists()


@pytest.mark.parametrize(
    "name",
    ["policy-delete", "step-add", "rotation-delete", "silence-expire", "maintenance-delete"],
)
def test_action_endpoints_refuse_get(as_user, owner, name):
    assert as_user(owner).get(url(name, 1)).status_code == 405


def test_preview_never_reaches_into_another_team(as_user, outsider, check):
    # The outsider's own team has no checks; the preview shows none of this team's.
    body = as_user(outsider).get(url("silence-preview"), {"whole_team": "on"}).content.decode()
    assert "nightly-backup" not in body and "Matches no check" in body


def test_another_teams_silence_cannot_be_expired(as_user, owner, other_team, outsider, t0):
    silence = Silence.objects.create(
        team=other_team,
        starts_at=t0,
        ends_at=t0 + timedelta(days=3650),
        matchers={"whole_team": True},
        created_by=outsider,
        comment="theirs",
        created_at=t0,
    )
    assert as_user(owner).post(url("silence-expire", silence.id)).status_code == 404
    silence.refresh_from_db()
    assert silence.expired_at is None


def test_another_teams_maintenance_window_cannot_be_deleted(as_user, owner, other_team, t0):
    window = MaintenanceWindow.objects.create(
        team=other_team,
        name="theirs",
        cron="0 2 * * *",
        duration=timedelta(hours=1),
        matchers={"whole_team": True},
        comment="x",
        created_at=t0,
    )
    assert as_user(owner).post(url("maintenance-delete", window.id)).status_code == 404
    assert MaintenanceWindow.objects.filter(id=window.id).exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("policy-create", {"name": "New"}),
        ("rotation-create", {"name": "New"}),
        ("maintenance-list", {"name": "New"}),
    ],
)
def test_members_cannot_create_admin_things(as_user, member, name, data):
    assert as_user(member).post(url(name), data).status_code == 403
    assert not EscalationPolicy.objects.exists() and not Rotation.objects.exists()


def test_viewer_cannot_edit_a_policy_or_silence(as_user, viewer, policy, check):
    client = as_user(viewer)
    assert client.post(url("policy-detail", policy.id), {"name": "Hijacked"}).status_code == 403
    data = {"whole_team": "on", "comment": "x", "duration_0": "1", "duration_1": "hours"}
    assert client.post(url("silence-list"), data).status_code == 403
    assert not Silence.objects.exists()
    policy.refresh_from_db()
    assert policy.name == "Primary"


# --- policies -------------------------------------------------------------------------------


def policy_data(**overrides):
    data = {
        "name": "Night shift",
        "repeat": "2",
        "reminder_interval_0": "1",
        "reminder_interval_1": "hours",
        "ack_timeout_0": "",
        "ack_timeout_1": "hours",
        "severities": ["critical"],
    }
    return data | overrides


def test_admin_creates_a_policy(as_user, admin, team):
    response = as_user(admin).post(url("policy-create"), policy_data())
    policy = EscalationPolicy.objects.get()
    assert response.status_code == 302 and response["Location"] == url("policy-detail", policy.id)
    assert (policy.team, policy.repeat, policy.severities) == (team, 2, "critical")
    assert policy.reminder_interval == timedelta(hours=1) and policy.ack_timeout is None
    assert not policy.is_default


def test_a_default_without_steps_is_refused(as_user, admin, team):
    response = as_user(admin).post(url("policy-create"), policy_data(is_default="on"))
    assert response.status_code == 400
    assert "A team default needs at least one step" in response.content.decode()
    assert not EscalationPolicy.objects.exists()


def test_a_new_default_replaces_the_old_one(as_user, admin, team, policy):
    make_policy(team, [(10, [("team", team.id)])], name="Old default", is_default=True)
    response = as_user(admin).post(
        url("policy-detail", policy.id), policy_data(name=policy.name, is_default="on")
    )
    assert response.status_code == 302
    assert list(
        EscalationPolicy.objects.filter(is_default=True).values_list("name", flat=True)
    ) == [policy.name]


def test_the_last_step_of_the_default_cannot_be_removed(as_user, admin, team):
    default = make_policy(team, [(10, [("team", team.id)])], name="Default", is_default=True)
    (step,) = default.steps.all()
    response = as_user(admin).post(url("step-change", default.id, step.id, "remove"))
    assert response.status_code == 400
    assert "last step of the team default" in response.content.decode()
    assert default.steps.count() == 1


def test_the_overview_shows_what_each_policy_covers(as_user, admin, team, policy):
    default = make_policy(team, [(10, [("team", team.id)])], name="Default", is_default=True)
    CheckFactory(team=team, escalation_policy=policy)
    CheckFactory.create_batch(2, team=team)
    page = as_user(admin).get(url("overview")).content.decode()
    assert f'id="policy-{policy.id}-covers">1 check<' in page
    assert f'id="policy-{default.id}-covers">2 checks (all without a policy of their own)<' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "required"),
        ({"name": "   "}, "required"),
        ({"name": "x" * 101}, "at most 100"),
        ({"name": "Primary"}, "already has a policy"),
        ({"repeat": "21"}, "from 0 to 20"),
        ({"repeat": "-1"}, "from 0 to 20"),
        ({"repeat": "lots"}, "whole number"),
        ({"severities": ["fatal"]}, "not one of the available choices"),
        ({"reminder_interval_0": "0"}, "at least 1 minute"),
        ({"reminder_interval_1": "fortnights"}, "Choose minutes, hours or days"),
    ],
    ids=[
        "empty",
        "blank",
        "oversized",
        "duplicate",
        "repeat-high",
        "repeat-negative",
        "repeat-text",
        "bad-severity",
        "zero-reminder",
        "bad-unit",
    ],
)
def test_bad_policy_input_is_refused(as_user, admin, policy, data, message):
    response = as_user(admin).post(url("policy-create"), policy_data(**data))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert EscalationPolicy.objects.count() == 1


def test_hostile_policy_name_is_escaped(as_user, admin):
    as_user(admin).post(url("policy-create"), policy_data(name=HOSTILE))
    policy = EscalationPolicy.objects.get()
    body = as_user(admin).get(url("policy-detail", policy.id)).content.decode()
    assert HOSTILE not in body and "&lt;script&gt;" in body


def test_admin_edits_a_policy(as_user, admin, policy):
    response = as_user(admin).post(url("policy-detail", policy.id), policy_data(name="Renamed"))
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.name == "Renamed" and policy.repeat == 2


def test_policy_page_names_the_targets(as_user, viewer, policy):
    body = as_user(viewer).get(url("policy-detail", policy.id)).content.decode()
    assert "Member alice" in body and "Everyone on the team" in body
    assert "Add step" not in body


def step_data(*targets, **overrides):
    return {"wait_0": "15", "wait_1": "minutes", "targets": list(targets)} | overrides


def test_admin_adds_a_step_with_htmx(as_user, admin, policy, team):
    chat = make_channel(team)
    response = as_user(admin).post(
        url("step-add", policy.id), step_data(f"channel:{chat.id}"), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="steps"') and "Channel ops-chat" in body
    step = policy.steps.last()
    assert (step.order, step.targets, step.wait) == (
        2,
        [{"kind": "channel", "id": chat.id}],
        timedelta(minutes=15),
    )


@pytest.mark.parametrize(
    "targets",
    [[], ["user:abc"], ["user:999999"], ["nonsense"], [HOSTILE]],
    ids=["none", "not-a-number", "unknown-user", "malformed", "hostile"],
)
def test_bad_step_targets_are_refused(as_user, admin, policy, targets):
    response = as_user(admin).post(url("step-add", policy.id), step_data(*targets))
    assert response.status_code == 400
    assert policy.steps.count() == 2


def test_another_teams_member_or_channel_cannot_be_a_target(
    as_user, admin, policy, outsider, other_team
):
    theirs = make_channel(other_team, name="their-chat")
    for target in (f"user:{outsider.id}", f"channel:{theirs.id}"):
        response = as_user(admin).post(url("step-add", policy.id), step_data(target))
        assert response.status_code == 400
        assert "not one of the available choices" in response.content.decode()
    assert policy.steps.count() == 2


def test_steps_move_and_are_removed(as_user, admin, policy):
    client = as_user(admin)
    first, second = policy.steps.all()
    client.post(url("step-change", policy.id, second.id, "up"))
    assert list(policy.steps.values_list("id", flat=True)) == [second.id, first.id]
    client.post(url("step-change", policy.id, second.id, "up"))  # already first: no change
    assert list(policy.steps.values_list("id", "order")) == [(second.id, 0), (first.id, 1)]
    client.post(url("step-change", policy.id, second.id, "remove"))
    assert list(policy.steps.values_list("id", "order")) == [(first.id, 0)]
    response = client.post(url("step-change", policy.id, first.id, "explode"))
    assert response.status_code == 404


def test_members_cannot_change_steps(as_user, member, policy):
    step = policy.steps.first()
    assert as_user(member).post(url("step-change", policy.id, step.id, "remove")).status_code == 403
    assert policy.steps.count() == 2


# --- rotations ------------------------------------------------------------------------------


def rotation_data(**overrides):
    return {
        "name": "Primary on-call",
        "timezone": "Europe/Riga",
        "cadence": "weekly",
        "handoff_time": "09:00",
        "start_date": "2026-11-02",
    } | overrides


def test_admin_creates_a_rotation_with_members_in_order(as_user, admin, owner, member):
    data = rotation_data(members=[str(member.id), str(owner.id), ""])  # "": the add menu
    response = as_user(admin).post(url("rotation-create"), data)
    rotation = Rotation.objects.get()
    assert response.status_code == 302
    assert [m.user for m in rotation.members.all()] == [member, owner]
    assert [m.order for m in rotation.members.all()] == [0, 1]
    page = as_user(admin).get(url("rotation-detail", rotation.id))
    assert page.status_code == 200 and "On call now" in page.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"members": ""}, "Add at least one member"),
        ({"members": ["", ""]}, "Add at least one member"),
        ({"members": ["alice"]}, "not a member of this team"),
        ({"members": ["999999"]}, "not a member of this team"),
        ({"members": ["<script>x</script>"]}, "&lt;script&gt;x&lt;/script&gt;” is not a member"),
        ({"timezone": "Mars/Olympus"}, "not a timezone"),
        ({"handoff_time": "25:99"}, "Enter a valid time"),
        ({"cadence": "hourly"}, "not one of the available choices"),
        ({"start_date": "yesterday"}, "Enter a valid date"),
        ({"start_date": "9999-12-31"}, "between the years 2000 and 9000"),
        ({"name": HOSTILE * 10}, "at most 100"),
    ],
    ids=[
        "no-members",
        "only-empty",
        "a-name-not-an-id",
        "unknown",
        "hostile",
        "timezone",
        "time",
        "cadence",
        "date",
        "date-at-calendar-end",
        "long",
    ],
)
def test_bad_rotation_input_is_refused(as_user, admin, owner, data, message):
    response = as_user(admin).post(
        url("rotation-create"), rotation_data(members=[str(owner.id)]) | data
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Rotation.objects.exists()


@pytest.fixture
def rotation(team, owner):
    rotation = Rotation.objects.create(
        team=team, name="R", handoff_time="09:00", start_date="2026-11-01"
    )
    rotation.members.create(user=owner)
    return rotation


def test_rotation_members_refuse_another_teams_user_a_repeat_and_too_many(
    as_user, admin, owner, outsider
):
    client = as_user(admin)
    for members, message in (
        ([str(outsider.id)], "is not a member of this team"),
        ([str(owner.id), str(admin.id), str(owner.id)], "alice is listed twice"),
        ([str(owner.id)] * 51, "At most 50 members"),
    ):
        response = client.post(url("rotation-create"), rotation_data(members=members))
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not Rotation.objects.exists()


def test_rotation_page_lists_members_in_order_and_saving_reorders_them(
    as_user, admin, owner, member, rotation
):
    rotation.members.create(user=member, order=1)
    client = as_user(admin)
    html = client.get(url("rotation-detail", rotation.id)).content.decode()
    order = html[
        html.index('class="member-order"') : html.index("</ol>", html.index("member-order"))
    ]
    assert order.index(f'value="{owner.id}"') < order.index(f'value="{member.id}"')
    assert 'data-member-move="up"' in order and 'data-member-move="remove"' in order
    data = rotation_data(name="R", members=[str(member.id), str(owner.id), str(admin.id)])
    assert client.post(url("rotation-detail", rotation.id), data).status_code == 302
    assert [m.user for m in rotation.members.all()] == [member, owner, admin]
    assert rotation.spec().members == (member.id, owner.id, admin.id)
    # Removing: only those posted stay.
    client.post(url("rotation-detail", rotation.id), data | {"members": [str(admin.id)]})
    assert [m.user for m in rotation.members.all()] == [admin]


def test_member_names_are_escaped_in_the_member_list(as_user, admin, team, rotation):
    hostile = MembershipFactory(team=team, user__username="<b>x</b>").user
    rotation.members.create(user=hostile, order=1)
    html = as_user(admin).get(url("rotation-detail", rotation.id)).content.decode()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_override_is_added_and_removed(as_user, admin, member, rotation):
    client = as_user(admin)
    data = {"user": str(member.id), "starts_at": "2036-01-01T09:00", "ends_at": "2036-01-02T09:00"}
    assert client.post(url("override-add", rotation.id), data).status_code == 302
    override = RotationOverride.objects.get()
    assert override.user == member and override.starts_at.hour == 9
    client.post(url("override-delete", rotation.id, override.id))
    assert not RotationOverride.objects.exists()


@pytest.mark.parametrize(
    "data",
    [
        {"starts_at": "2036-01-02T09:00", "ends_at": "2036-01-01T09:00"},
        {"starts_at": "soon", "ends_at": "2036-01-01T09:00"},
        {"starts_at": "", "ends_at": ""},
        {"user": "charlie"},
    ],
    ids=["backwards", "malformed", "missing", "bad-user"],
)
def test_bad_override_is_refused(as_user, admin, member, rotation, data):
    base = {"user": str(member.id), "starts_at": "2036-01-01T09:00", "ends_at": "2036-01-02T09:00"}
    response = as_user(admin).post(url("override-add", rotation.id), base | data)
    assert response.status_code == 400
    assert not RotationOverride.objects.exists()


def test_override_for_another_teams_user_is_refused(as_user, admin, outsider, rotation):
    data = {"user": str(outsider.id), "starts_at": "2036-01-01T09:00", "ends_at": "2036-01-02"}
    assert as_user(admin).post(url("override-add", rotation.id), data).status_code == 400


# --- silences -------------------------------------------------------------------------------


def silence_data(**overrides):
    return {"tags": "backup", "comment": "restoring the db", "duration_0": "2"} | {
        "duration_1": "hours",
        **overrides,
    }


def test_member_silences_with_a_duration(as_user, member, team, check):
    response = as_user(member).post(url("silence-list"), silence_data())
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.team == team and silence.created_by == member
    assert silence.matchers["tags"] == ["backup"]
    assert silence.ends_at - silence.starts_at == timedelta(hours=2)
    page = as_user(member).get(url("silence-list")).content.decode()
    assert "restoring the db" in page and "nightly-backup" in page  # listed, and silenced now


def test_silence_of_chosen_checks_until_a_time(as_user, member, check):
    until = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "checks": [str(check.id)],
        "comment": "deploy",
        "ends_at": until,
        "duration_1": "hours",
    }
    assert as_user(member).post(url("silence-list"), data).status_code == 302
    assert Silence.objects.get().matchers["check_ids"] == [str(check.id)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"comment": ""}, "comment is required"),
        ({"comment": "   "}, "comment is required"),
        ({"comment": "x" * 1001}, "at most 1000"),
        ({"tags": ""}, "Choose what to silence"),
        ({"duration_0": ""}, "end time or a duration"),
        ({"ends_at": "2099-01-01T00:00"}, "not both"),
        ({"duration_0": "", "ends_at": "2001-01-01T00:00"}, "in the past"),
        ({"duration_0": "", "ends_at": "never"}, "like 2026-11-02T03:00"),
        ({"duration_0": "91", "duration_1": "days"}, "at most 90 days"),
        ({"checks": ["not-a-check"]}, "not one of the available choices"),
        (
            {"starts_at": "2099-01-02T00:00", "duration_0": "", "ends_at": "2099-01-01T00:00"},
            "after the start",
        ),
        # Sums and time zones that fall off the calendar once answered 500.
        ({"duration_0": "10000000", "duration_1": "days"}, "at most 90 days"),
        ({"starts_at": "9999-12-31T23:00", "duration_0": "2"}, "between the years 2000 and 9000"),
        ({"starts_at": "0001-01-01T00:00+05:00"}, "between the years 2000 and 9000"),
    ],
    ids=[
        "no-comment",
        "blank-comment",
        "long-comment",
        "no-matcher",
        "no-end",
        "both-ends",
        "past",
        "malformed-end",
        "too-long",
        "bad-check",
        "backwards",
        "overflowing-duration",
        "end-of-calendar",
        "before-the-calendar",
    ],
)
def test_bad_silence_input_is_refused(as_user, member, check, data, message):
    response = as_user(member).post(url("silence-list"), silence_data(**data))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Silence.objects.exists()


@pytest.mark.parametrize(
    "matchers",
    [
        {"tags": "no-such-tag"},
        {"tags": "backup", "environment": "staging"},  # the check is in production
        {"tags": "etl", "checks": "CHECK"},  # the chosen check has no etl tag: they narrow
    ],
    ids=["unknown-tag", "tag-and-environment-narrow-to-nothing", "tag-and-check-narrow"],
)
def test_a_silence_matching_no_check_is_refused_unless_confirmed(as_user, member, check, matchers):
    matchers = {k: [str(check.id)] if v == "CHECK" else v for k, v in matchers.items()}
    client = as_user(member)
    response = client.post(url("silence-list"), silence_data(**matchers))
    assert response.status_code == 400
    body = response.content.decode()
    assert "These matchers match no check of the team" in body
    assert "narrow each other" in body
    assert not Silence.objects.exists()

    response = client.post(url("silence-list"), silence_data(**matchers, confirm_no_match="on"))
    assert response.status_code == 302
    silence = Silence.objects.get()
    page = client.get(url("silence-list")).content.decode()
    assert f'id="silence-{silence.id}-covers"><strong>Covers no check</strong>' in page


def test_the_form_says_how_tags_and_checks_combine(as_user, member, check):
    page = as_user(member).get(url("silence-list")).content.decode()
    assert "a check with any one of these tags matches" in page
    assert "Checks, tags and environment narrow each other" in page


def test_the_silences_list_names_the_checks_covered(as_user, member, team, check):
    CheckFactory(team=team, name="offsite-backup", slug="offsite-backup", tags="backup")
    CheckFactory(team=team, name="etl", slug="etl", tags="etl")
    client = as_user(member)
    assert client.post(url("silence-list"), silence_data()).status_code == 302
    silence = Silence.objects.get()
    page = client.get(url("silence-list")).content.decode()
    start = page.index(f'id="silence-{silence.id}-covers"')
    covers = page[start : page.index("</span>", start)]
    assert "nightly-backup" in covers and "offsite-backup" in covers and "etl" not in covers


def test_silence_cannot_name_another_teams_check(as_user, member, other_team):
    theirs = CheckFactory(team=other_team)
    response = as_user(member).post(
        url("silence-list"), silence_data(tags="", checks=[str(theirs.id)])
    )
    assert response.status_code == 400
    assert not Silence.objects.exists()


def test_preview_lists_what_a_silence_would_match(as_user, viewer, team, check, other_team):
    CheckFactory(team=team, name="etl", slug="etl", tags="etl", environment="staging")
    CheckFactory(team=other_team, name="their-backup", slug="their-backup", tags="backup")
    client = as_user(viewer)
    body = client.get(url("silence-preview"), {"tags": "backup"}).content.decode()
    assert "nightly-backup" in body and "etl" not in body and "their-backup" not in body
    body = client.get(url("silence-preview"), {"environment": "staging"}).content.decode()
    assert "etl" in body and "nightly-backup" not in body
    body = client.get(url("silence-preview"), {"checks": "garbage"}).content.decode()
    assert "Matches no check" in body


def test_member_expires_a_silence_early(as_user, member, owner, team, t0):
    silence = Silence.objects.create(
        team=team,
        starts_at=t0,
        ends_at=t0 + timedelta(days=3650),
        matchers={"whole_team": True},
        created_by=owner,
        comment="x",
        created_at=t0,
    )
    assert as_user(member).post(url("silence-expire", silence.id)).status_code == 302
    silence.refresh_from_db()
    assert silence.expired_at is not None and silence.expired_by == member


def test_viewer_cannot_expire_a_silence(as_user, viewer, owner, team, t0):
    silence = Silence.objects.create(
        team=team,
        starts_at=t0,
        ends_at=t0 + timedelta(days=3650),
        matchers={"whole_team": True},
        created_by=owner,
        comment="x",
        created_at=t0,
    )
    assert as_user(viewer).post(url("silence-expire", silence.id)).status_code == 403
    silence.refresh_from_db()
    assert silence.expired_at is None


# --- maintenance windows --------------------------------------------------------------------


def window_data(**overrides):
    return {
        "name": "Sunday patching",
        "cron": "0 2 * * 0",
        "duration_0": "2",
        "duration_1": "hours",
        "timezone": "Europe/Riga",
        "environment": "production",
        "comment": "vendor patches",
    } | overrides


def test_admin_creates_a_maintenance_window(as_user, admin, team):
    response = as_user(admin).post(url("maintenance-list"), window_data())
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get()
    assert (window.team, window.cron, window.timezone) == (team, "0 2 * * 0", "Europe/Riga")
    assert window.matchers["environment"] == "production"
    page = as_user(admin).get(url("maintenance-list")).content.decode()
    assert "Sunday patching" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cron": "every sunday"}, "Not a cron expression"),
        ({"cron": "61 2 * * *"}, "Not a cron expression"),
        ({"timezone": "Nowhere/Land"}, "not a timezone"),
        ({"duration_0": "8", "duration_1": "days"}, "at most 7 days"),
        ({"duration_0": ""}, "required"),
        ({"comment": ""}, "comment is required"),
        ({"environment": "", "whole_team": ""}, "Choose what to silence"),
    ],
    ids=["cron-words", "cron-range", "timezone", "too-long", "no-duration", "no-comment", "none"],
)
def test_bad_maintenance_window_input_is_refused(as_user, admin, data, message):
    response = as_user(admin).post(url("maintenance-list"), window_data(**data))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


# --- checks using a policy ------------------------------------------------------------------


def test_admin_assigns_existing_checks_to_a_policy(as_user, admin, team, policy, check):
    other = CheckFactory(team=team, name="other", slug="other")
    kept_elsewhere = CheckFactory(team=team, name="elsewhere", slug="elsewhere")
    second = make_policy(team, [(5, [("team", team.id)])], name="Second")
    kept_elsewhere.escalation_policy = second
    kept_elsewhere.save()
    other.escalation_policy = policy
    other.save()
    client = as_user(admin)
    response = client.post(url("policy-checks", policy.id), {"checks": [str(check.id)]})
    assert response.status_code == 302
    check.refresh_from_db()
    other.refresh_from_db()
    kept_elsewhere.refresh_from_db()
    assert check.escalation_policy == policy
    assert other.escalation_policy is None  # unticked: back to the team default
    assert kept_elsewhere.escalation_policy == second  # not this policy's to change
    page = client.get(url("policy-detail", policy.id)).content.decode()
    assert "elsewhere (now Second)" in page


def test_another_teams_check_cannot_be_assigned(as_user, admin, policy, other_team):
    theirs = CheckFactory(team=other_team)
    response = as_user(admin).post(url("policy-checks", policy.id), {"checks": [str(theirs.id)]})
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.escalation_policy is None


def test_members_cannot_assign_checks_and_outsiders_get_404(
    as_user, member, outsider, policy, check
):
    assert (
        as_user(member)
        .post(url("policy-checks", policy.id), {"checks": [str(check.id)]})
        .status_code
        == 403
    )
    assert (
        as_user(outsider)
        .post(url("policy-checks", policy.id), {"checks": [str(check.id)]})
        .status_code
        == 404
    )
    check.refresh_from_db()
    assert check.escalation_policy is None


@pytest.mark.parametrize("name", ["policy-create", "rotation-create", "maintenance-list"])
def test_an_empty_post_is_refused_not_ignored(as_user, admin, name):
    response = as_user(admin).post(url(name), {})
    assert response.status_code == 400
    assert "required" in response.content.decode()


def test_an_empty_silence_post_is_refused(as_user, member):
    response = as_user(member).post(url("silence-list"), {})
    assert response.status_code == 400
    assert not Silence.objects.exists()
