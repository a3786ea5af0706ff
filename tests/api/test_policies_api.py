"""/api/v1/escalation-policies/: CRUD with nested, ordered steps; the dashboard forms' rules,
deleting a policy in use, permissions and bad input."""

from datetime import timedelta

import pytest

from apps.escalation.models import EscalationPolicy, EscalationStep
from apps.notifications.models import Channel
from tests.factories import CheckFactory

MIN = 60


@pytest.fixture
def channel(team):
    return Channel.objects.create(team=team, name="ops-mail", kind="email", config={})


def policy_body(channel, member, **changes):
    return {
        "name": "Database",
        "repeat": 2,
        "reminder_interval": 60 * MIN,
        "ack_timeout": 4 * 60 * MIN,
        "severities": ["critical"],
        "steps": [
            {"wait": 10 * MIN, "targets": [{"kind": "channel", "id": channel.id}]},
            {
                "wait": 30 * MIN,
                "targets": [{"kind": "user", "id": member.id}, {"kind": "team"}],
                "severities": ["critical", "warning"],
            },
        ],
        **changes,
    }


def test_create_with_ordered_steps_and_read_it_back(api, team, channel, member):
    response = api.post("/api/v1/escalation-policies/", policy_body(channel, member))
    assert response.status_code == 201, response.json()
    body = response.json()
    policy = EscalationPolicy.objects.get(id=body["id"])
    assert policy.team == team and policy.repeat == 2
    assert policy.ack_timeout == timedelta(hours=4)
    steps = list(policy.steps.all())
    assert [s.wait for s in steps] == [timedelta(minutes=10), timedelta(minutes=30)]
    assert steps[1].targets == [{"kind": "user", "id": member.id}, {"kind": "team", "id": team.id}]
    assert steps[1].severities == "critical warning"
    assert body["steps"][0] == {
        "order": 0,
        "wait": 600,
        "targets": [{"kind": "channel", "id": channel.id}],
        "severities": [],
    }
    assert body["severities"] == ["critical"] and body["reminder_interval"] == 3600
    assert api.get(f"/api/v1/escalation-policies/{policy.id}/").json() == body
    assert api.get("/api/v1/escalation-policies/").json()["count"] == 1


def test_put_replaces_everything_and_patch_only_what_it_names(api, channel, member):
    created = api.post("/api/v1/escalation-policies/", policy_body(channel, member)).json()
    url = f"/api/v1/escalation-policies/{created['id']}/"

    renamed = api.patch(url, {"name": "DB"})
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["name"] == "DB" and len(renamed.json()["steps"]) == 2
    assert renamed.json()["repeat"] == 2

    # "order" is not an input: the order of the list is.
    numbered = api.patch(url, {"steps": [{"order": 0, "targets": [{"kind": "team"}]}]})
    assert numbered.status_code == 400 and "steps" in numbered.json()["fields"]
    one_step = {"wait": 5 * MIN, "targets": [{"kind": "team"}]}
    patched = api.patch(url, {"steps": [one_step]})
    assert [s["wait"] for s in patched.json()["steps"]] == [300]

    replaced = api.put(url, {"name": "Minimal"})
    assert replaced.status_code == 200, replaced.json()
    body = replaced.json()
    assert (body["repeat"], body["ack_timeout"], body["steps"]) == (0, None, [])
    assert EscalationStep.objects.count() == 0


EVERYONE = [{"wait": 10 * MIN, "targets": [{"kind": "team"}]}]


def test_a_new_default_replaces_the_old_one(api, team):
    body = {"is_default": True, "steps": EVERYONE}
    first = api.post("/api/v1/escalation-policies/", {"name": "A", **body}).json()
    second = api.post("/api/v1/escalation-policies/", {"name": "B", **body}).json()
    assert api.get(f"/api/v1/escalation-policies/{first['id']}/").json()["is_default"] is False
    assert EscalationPolicy.objects.get(is_default=True).id == second["id"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"repeat": 21}, "repeat"),
        ({"repeat": -1}, "repeat"),
        ({"repeat": "2"}, "repeat"),
        ({"name": " "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"ack_timeout": 90}, "ack_timeout"),
        ({"ack_timeout": 400 * 86400}, "ack_timeout"),
        ({"severities": ["apocalyptic"]}, "severities"),
        ({"steps": [{"wait": 600, "targets": []}]}, "steps[0].targets"),
        ({"steps": [{"wait": 600}]}, "steps"),
        ({"steps": [{"wait": 601, "targets": [{"kind": "team"}]}]}, "steps"),
        ({"steps": [{"targets": [{"kind": "pager", "id": 1}]}]}, "steps"),
        ({"steps": [{"targets": [{"kind": "user"}]}]}, "steps"),
        ({"steps": [{"targets": [{"kind": "user", "id": 999999}]}]}, "steps[0].targets"),
        ({"steps": [{"targets": [{"kind": "team", "id": 999999}]}]}, "steps[0].targets"),
        ({"steps": [{"targets": [{"kind": "team"}], "escalate": True}]}, "steps"),
        ({"steps": [{"targets": [{"kind": "team"}]}] * 21}, "steps"),
        ({"steps": "all of them"}, "steps"),
        ({"owner": "me"}, "owner"),
    ],
    ids=[
        "repeat-over-20",
        "repeat-negative",
        "repeat-text",
        "blank-name",
        "long-name",
        "not-whole-minutes",
        "over-a-year",
        "unknown-severity",
        "step-without-targets",
        "step-targets-missing",
        "wait-not-minutes",
        "unknown-target-kind",
        "user-without-id",
        "not-a-member",
        "another-team",
        "unknown-step-field",
        "too-many-steps",
        "steps-not-a-list",
        "unknown-field",
    ],
)
def test_create_refuses_bad_input_with_field_details(api, team, changes, field):
    response = api.post("/api/v1/escalation-policies/", {"name": "P", **changes})
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    assert field in fields or any(key.startswith(field) for key in fields), fields
    assert not EscalationPolicy.objects.exists()


def test_create_refuses_a_taken_name_and_another_teams_channel(api, team, other_team):
    api.post("/api/v1/escalation-policies/", {"name": "Taken"})
    clash = api.post("/api/v1/escalation-policies/", {"name": "Taken"})
    assert clash.status_code == 400 and "name" in clash.json()["fields"]
    theirs = Channel.objects.create(team=other_team, name="theirs", kind="email")
    steps = [{"targets": [{"kind": "channel", "id": theirs.id}]}]
    response = api.post("/api/v1/escalation-policies/", {"name": "Other", "steps": steps})
    assert response.status_code == 400
    assert "steps[0].targets" in response.json()["fields"]
    assert EscalationPolicy.objects.count() == 1


def test_deleting_a_policy_checks_use_needs_force(api, team):
    policy_id = api.post("/api/v1/escalation-policies/", {"name": "Used"}).json()["id"]
    check = CheckFactory(team=team, escalation_policy_id=policy_id)
    url = f"/api/v1/escalation-policies/{policy_id}/"
    refused = api.delete(url)
    assert refused.status_code == 409
    assert "1 check" in refused.json()["error"]
    assert api.delete(f"{url}?force=maybe").status_code == 400
    assert api.delete(f"{url}?force=true").status_code == 204
    check.refresh_from_db()
    assert check.escalation_policy is None  # falls back to the team default
    unused = api.post("/api/v1/escalation-policies/", {"name": "Unused"}).json()["id"]
    assert api.delete(f"/api/v1/escalation-policies/{unused}/").status_code == 204
    assert not EscalationPolicy.objects.exists()


def test_the_default_policy_is_in_use_by_checks_that_name_none(api, team):
    policy_id = api.post(
        "/api/v1/escalation-policies/", {"name": "D", "is_default": True, "steps": EVERYONE}
    )
    CheckFactory(team=team)
    response = api.delete(f"/api/v1/escalation-policies/{policy_id.json()['id']}/")
    assert response.status_code == 409


def test_a_default_policy_without_steps_is_refused(api, team):
    response = api.post("/api/v1/escalation-policies/", {"name": "D", "is_default": True})
    assert response.status_code == 400
    assert "at least one step" in response.json()["fields"]["is_default"][0]
    assert not EscalationPolicy.objects.exists()

    created = api.post(
        "/api/v1/escalation-policies/", {"name": "D", "is_default": True, "steps": EVERYONE}
    )
    assert created.status_code == 201, created.json()
    url = f"/api/v1/escalation-policies/{created.json()['id']}/"
    # Emptying the default's steps is refused too; a PATCH that leaves them out keeps them.
    assert api.patch(url, {"steps": []}).status_code == 400
    assert api.patch(url, {"repeat": 1}).status_code == 200
    assert EscalationPolicy.objects.get().steps.count() == 1


def test_read_only_key_reads_but_cannot_write(api, ro_api, team):
    policy_id = api.post("/api/v1/escalation-policies/", {"name": "P"}).json()["id"]
    url = f"/api/v1/escalation-policies/{policy_id}/"
    assert ro_api.get(url).status_code == 200
    assert ro_api.post("/api/v1/escalation-policies/", {"name": "Q"}).status_code == 403
    assert ro_api.put(url, {"name": "Q"}).status_code == 403
    assert ro_api.patch(url, {"name": "Q"}).status_code == 403
    assert ro_api.delete(url).status_code == 403
    assert list(EscalationPolicy.objects.values_list("name", flat=True)) == ["P"]


def test_other_teams_key_gets_404_and_no_key_401(api, other_api, anon_api, team):
    policy_id = api.post("/api/v1/escalation-policies/", {"name": "P"}).json()["id"]
    url = f"/api/v1/escalation-policies/{policy_id}/"
    assert other_api.get(url).status_code == 404
    assert other_api.patch(url, {"name": "Mine"}).status_code == 404
    assert other_api.delete(f"{url}?force=true").status_code == 404
    assert other_api.get("/api/v1/escalation-policies/").json()["count"] == 0
    assert anon_api.get(url).status_code == 401
    assert anon_api.post("/api/v1/escalation-policies/", {"name": "Q"}).status_code == 401
    assert list(EscalationPolicy.objects.values_list("name", flat=True)) == ["P"]
