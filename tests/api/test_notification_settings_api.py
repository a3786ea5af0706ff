"""/api/tocsin/v1/notification-settings/: the team's notification grouping, read and changed with
the Grouping page's form rules; the grouping set through the API is the one dispatch uses."""

from datetime import timedelta

import pytest

from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident
from apps.notifications.delivery import deliver, due_delivery_ids
from apps.notifications.dispatch import Recipient, notify
from apps.notifications.flush import flush_due_groups
from apps.notifications.groups import grouping_rules
from apps.notifications.models import Channel, TeamNotificationSettings
from tests.factories import CheckFactory
from tests.notifications.receiver import receiving

URL = "/api/tocsin/v1/notification-settings/"


def test_a_team_that_never_saved_reads_the_defaults(api, team, settings):
    settings.NOTIFICATION_GROUP_WAIT = timedelta(seconds=45)
    settings.NOTIFICATION_GROUP_INTERVAL = timedelta(minutes=10)
    response = api.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "group_by": "team",
        "group_wait": 45,
        "group_interval": 600,
        "is_default": True,
    }
    assert not TeamNotificationSettings.objects.exists()


def test_put_saves_the_grouping_that_dispatch_then_uses(api, team):
    body = {"group_by": "environment", "group_wait": 0, "group_interval": 3600}
    response = api.put(URL, body)
    assert response.status_code == 200, response.json()
    assert response.json() == {**body, "is_default": False}
    rules = grouping_rules(team.id)
    assert (rules.group_by, rules.group_wait, rules.group_interval) == (
        "environment",
        timedelta(0),
        timedelta(hours=1),
    )
    assert api.get(URL).json() == response.json()


def test_patch_changes_only_what_it_names(api, team):
    api.put(URL, {"group_by": "tag", "group_wait": 60, "group_interval": 900})
    response = api.patch(URL, {"group_wait": 120})
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "group_by": "tag",
        "group_wait": 120,
        "group_interval": 900,
        "is_default": False,
    }
    assert TeamNotificationSettings.objects.count() == 1


def test_a_first_patch_merges_into_the_defaults(api, team, settings):
    settings.NOTIFICATION_GROUP_WAIT = timedelta(seconds=30)
    settings.NOTIFICATION_GROUP_INTERVAL = timedelta(minutes=5)
    response = api.patch(URL, {"group_by": "tag"})
    assert response.json() == {
        "group_by": "tag",
        "group_wait": 30,
        "group_interval": 300,
        "is_default": False,
    }


@pytest.mark.parametrize(
    "body, field",
    [
        ({"group_wait": 3601}, "group_wait"),
        ({"group_wait": -1}, "group_wait"),
        ({"group_interval": 86401}, "group_interval"),
        ({"group_interval": 10**30}, "group_interval"),
        ({"group_wait": "30"}, "group_wait"),
        ({"group_wait": 1.5}, "group_wait"),
        ({"group_wait": True}, "group_wait"),
        ({"group_wait": None}, "group_wait"),
        ({"group_by": "policy"}, "group_by"),
        ({"group_by": "team'; DROP TABLE notifications_channel; --"}, "group_by"),
        ({"group_by": ["team"]}, "group_by"),
        ({"repeat": 2}, "repeat"),
    ],
    ids=[
        "wait-over-an-hour",
        "negative-wait",
        "interval-over-a-day",
        "huge-interval",
        "wait-as-text",
        "fraction",
        "boolean",
        "null",
        "unknown-group-by",
        "sql-in-group-by",
        "list-group-by",
        "unknown-field",
    ],
)
def test_bad_input_is_refused_with_the_field_and_saves_nothing(api, team, body, field):
    response = api.patch(URL, body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["fields"]
    assert not TeamNotificationSettings.objects.exists()


def test_the_forms_message_is_the_apis(api, team):
    response = api.patch(URL, {"group_wait": 3601})
    assert response.json()["fields"]["group_wait"] == [
        "Ensure this value is less than or equal to 3600."
    ]


def test_put_needs_every_field(api, team):
    response = api.put(URL, {"group_by": "tag"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"group_wait", "group_interval"}


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"null", b'{"group_by": ', b"x" * 2_000_000],
    ids=["empty", "list", "null", "truncated", "oversized"],
)
def test_malformed_or_oversized_bodies_are_refused(api, team, raw):
    response = api.call("PUT", URL, raw=raw)
    assert response.status_code in (400, 413)
    assert response.json()["code"] in ("invalid", "parse_error", "too_large")
    assert not TeamNotificationSettings.objects.exists()


def test_read_only_key_reads_but_cannot_change(ro_api, team):
    assert ro_api.get(URL).status_code == 200
    assert ro_api.patch(URL, {"group_wait": 0}).status_code == 403
    assert (
        ro_api.put(URL, {"group_by": "tag", "group_wait": 0, "group_interval": 0}).status_code
        == 403
    )
    assert not TeamNotificationSettings.objects.exists()


def test_each_key_reads_and_writes_its_own_team_only(api, other_api, anon_api, team, other_team):
    api.put(URL, {"group_by": "environment", "group_wait": 5, "group_interval": 60})
    theirs = other_api.get(URL).json()
    assert (theirs["group_by"], theirs["is_default"]) == ("team", True)
    other_api.patch(URL, {"group_wait": 600})
    assert grouping_rules(team.id).group_wait == timedelta(seconds=5)
    assert grouping_rules(other_team.id).group_wait == timedelta(seconds=600)
    assert anon_api.get(URL).status_code == 401
    assert anon_api.patch(URL, {"group_wait": 0}).status_code == 401


# --- end to end ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "group_by, messages", [("team", [4]), ("environment", [1, 3])], ids=["team", "environment"]
)
def test_the_grouping_set_through_the_api_shapes_the_messages_sent(
    api, team, t0, group_by, messages, settings
):
    """Four checks fail together (three in production, one in staging); the webhook receives
    one message per group the API's setting makes."""
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    body = {"group_by": group_by, "group_wait": 30, "group_interval": 300}
    assert api.put(URL, body).status_code == 200
    checks = [
        CheckFactory(team=team, name=f"job-{n}", environment="staging" if n == 3 else "production")
        for n in range(4)
    ]
    with receiving() as receiver:
        channel = Channel.objects.create(
            team=team, name="hook", kind="webhook", config={"url": receiver.url()}
        )
        for check in checks:
            record_ping(
                ping=PingData(kind="fail", method="POST", exit_status=1),
                token=check.ping_token,
                now=t0,
            )
        sweep_due_checks(now=t0)
        for incident in Incident.objects.filter(owner__team=team):
            notify(
                incident=incident,
                event="down",
                recipients=[Recipient(channel_id=channel.id)],
                round=0,
                step=0,
                now=t0,
            )
        flush_due_groups(now=t0)
        for delivery_id in due_delivery_ids(now=t0):
            deliver(delivery_id=delivery_id, now=t0, jitter=0)
        assert sorted(r.json()["count"] for r in receiver.requests) == messages
