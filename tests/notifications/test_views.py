"""Channel pages: roles, team scoping, every kind's form with malformed, oversized, missing and
hostile input, the private-address guard on save, "send a test notification" against a real
local receiver, and the team's grouping settings."""

from datetime import timedelta

import pytest
from django.urls import reverse

from apps.notifications.models import Channel, Delivery, TeamNotificationSettings
from apps.teams.models import Membership
from tests.factories import MembershipFactory

from .conftest import make_channel

PUBLIC_URL = "https://93.184.216.34/hooks/tocsin"  # an IP literal: no DNS needed in tests


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="ada").user


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def hook(team):
    return make_channel(team, "webhook", name="ops-hook", url=PUBLIC_URL)


def create(client, kind, **data):
    return client.post(reverse("notifications:channel-create", args=[kind]), data)


# --- who sees and changes what ------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, hook):
    for url in [
        reverse("notifications:channel-list"),
        reverse("notifications:channel-detail", args=[hook.id]),
        reverse("notifications:grouping"),
    ]:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_members_see_channels_but_cannot_change_them(client, member, hook):
    login(client, member)
    page = client.get(reverse("notifications:channel-list"))
    assert page.status_code == 200
    assert "ops-hook" in page.content.decode()
    assert "Add a channel" not in page.content.decode()
    detail = client.get(reverse("notifications:channel-detail", args=[hook.id])).content.decode()
    assert "ops-hook" in detail
    assert hook.secret not in detail  # only admins see the signing secret
    for name in ["channel-edit", "channel-test", "channel-secret", "channel-delete"]:
        assert client.post(reverse(f"notifications:{name}", args=[hook.id])).status_code == 403
    assert create(client, "webhook", name="x", url=PUBLIC_URL).status_code == 403
    assert Channel.objects.count() == 1


def test_viewers_see_the_channel_page(client, viewer, hook):
    login(client, viewer)
    assert client.get(reverse("notifications:channel-detail", args=[hook.id])).status_code == 200


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("channel-detail", "get"),
        ("channel-edit", "get"),
        ("channel-edit", "post"),
        ("channel-test", "post"),
        ("channel-secret", "post"),
        ("channel-delete", "post"),
    ],
)
def test_another_teams_channel_is_a_404(client, outsider, hook, name, method):
    login(client, outsider)
    response = getattr(client, method)(reverse(f"notifications:{name}", args=[hook.id]))
    assert response.status_code == 404
    assert Channel.objects.filter(id=hook.id, name="ops-hook").exists()
    assert not Delivery.objects.exists()


def test_a_channel_that_does_not_exist_is_a_404(client, admin):
    login(client, admin)
    assert client.get(reverse("notifications:channel-detail", args=[999_999])).status_code == 404


def test_the_list_shows_only_the_current_teams_channels(client, admin, outsider, other_team, hook):
    make_channel(other_team, "slack", name="their-chat", url=PUBLIC_URL)
    page = login(client, admin).get(reverse("notifications:channel-list")).content.decode()
    assert "ops-hook" in page and "their-chat" not in page


# --- creating each kind -------------------------------------------------------------------


def test_admin_creates_a_webhook_with_headers_and_a_generated_secret(client, admin, team):
    login(client, admin)
    response = create(
        client,
        "webhook",
        name="pager-bridge",
        url=PUBLIC_URL,
        headers="Authorization: Bearer abc\nX-Team: ops\n\n",
        is_enabled="on",
    )
    channel = Channel.objects.get(name="pager-bridge")
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:channel-detail", args=[channel.id])
    assert (channel.team, channel.kind, channel.is_enabled) == (team, "webhook", True)
    assert channel.config == {
        "url": PUBLIC_URL,
        "headers": {"Authorization": "Bearer abc", "X-Team": "ops"},
    }
    assert len(channel.secret) >= 40
    other = make_channel(team, "webhook", url=PUBLIC_URL)
    assert other.secret != channel.secret
    detail = client.get(response["Location"]).content.decode()
    assert channel.secret in detail  # admins see it, to configure their receiver
    assert "Bearer abc" not in detail  # header values are not shown back


@pytest.mark.parametrize(
    ("kind", "data", "config"),
    [
        (
            "slack",
            {"url": "https://93.184.216.34/services/T/B/X"},
            {"url": "https://93.184.216.34/services/T/B/X"},
        ),
        (
            "ntfy",
            {"url": "https://93.184.216.34/ops", "token": "tk_123"},
            {"url": "https://93.184.216.34/ops", "token": "tk_123"},
        ),
        ("email", {"address": "oncall@example.com"}, {"address": "oncall@example.com"}),
    ],
)
def test_admin_creates_the_other_kinds(client, admin, kind, data, config):
    login(client, admin)
    assert create(client, kind, name=f"my-{kind}", is_enabled="on", **data).status_code == 302
    assert Channel.objects.get(name=f"my-{kind}").config == config


def test_an_unknown_kind_is_a_404(client, admin):
    login(client, admin)
    assert client.get(reverse("notifications:channel-create", args=["pigeon"])).status_code == 404


def test_the_form_shows_only_the_kinds_fields(client, admin):
    login(client, admin)
    slack = client.get(reverse("notifications:channel-create", args=["slack"])).content.decode()
    assert 'name="url"' in slack and 'name="headers"' not in slack and 'name="address"' not in slack
    email = client.get(reverse("notifications:channel-create", args=["email"])).content.decode()
    assert 'name="address"' in email and 'name="url"' not in email


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "x", "url": ""}, "This field is required"),
        ({"url": PUBLIC_URL}, "This field is required"),
        ({"name": "x", "url": "not a url"}, "must not contain spaces"),
        ({"name": "x", "url": "ftp://93.184.216.34/x"}, "Enter an http:// or https:// URL"),
        ({"name": "x", "url": "javascript:alert(1)"}, "Enter an http:// or https:// URL"),
        ({"name": "x", "url": "http:///nohost"}, "Enter an http:// or https:// URL"),
        ({"name": "x", "url": "https://93.184.216.34:99999/x"}, "port"),
        ({"name": "x", "url": "https://user:pw@93.184.216.34/x"}, "credentials"),
        ({"name": "x", "url": PUBLIC_URL + "\r\nHost: evil"}, "control characters"),
        ({"name": "x", "url": "https://93.184.216.34/" + "a" * 3000}, "at most"),
        ({"name": "n" * 101, "url": PUBLIC_URL}, "at most 100 characters"),
        ({"name": "   ", "url": PUBLIC_URL}, "This field is required"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "no colon here"}, "Name: value"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "Bad Name: v"}, "Name: value"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "X-A: b\x07c"}, "control characters"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "X-A: caf\u00e9"}, "printable ASCII"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "Host: internal"}, "set by Tocsin"),
        ({"name": "x", "url": PUBLIC_URL, "headers": "content-length: 0"}, "set by Tocsin"),
        (
            {"name": "x", "url": PUBLIC_URL, "headers": "Transfer-Encoding: chunked"},
            "set by Tocsin",
        ),
        (
            {"name": "x", "url": PUBLIC_URL, "headers": "X-Tocsin-Signature: forged"},
            "set by Tocsin",
        ),
        ({"name": "x", "url": PUBLIC_URL, "headers": "X-A: 1\nx-a: 2"}, "given twice"),
        (
            {"name": "x", "url": PUBLIC_URL, "headers": "\n".join(f"X-{n}: v" for n in range(21))},
            "At most 20",
        ),
        ({"name": "x", "url": PUBLIC_URL, "headers": "X-A: " + "v" * 1001}, "too long"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_webhook_input_is_refused_with_a_clear_error(client, admin, data, error):
    login(client, admin)
    response = create(client, "webhook", **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Channel.objects.exists()


def test_a_header_split_across_lines_cannot_smuggle_a_reserved_header(client, admin):
    # CR, LF, CRLF and the other line breaks Python knows all end a line: what follows is
    # parsed as a header of its own and refused like any other reserved one.
    login(client, admin)
    for separator in ["\r\n", "\r", "\n", "\x0b", "\x1c", "\u2028"]:
        response = create(
            client, "webhook", name="x", url=PUBLIC_URL, headers=f"X-A: b{separator}Host: evil"
        )
        assert response.status_code == 400, repr(separator)
        assert "set by Tocsin" in response.content.decode()
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 around the metadata address
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[::a00:1]/hook",  # IPv4-compatible 10.0.0.1
    ],
)
@pytest.mark.parametrize("kind", ["webhook", "slack", "ntfy"])
def test_private_addresses_are_refused_on_save(client, admin, settings, url, kind):
    settings.OUTBOUND_ALLOW_LOOPBACK = settings.OUTBOUND_ALLOW_PRIVATE = False
    login(client, admin)
    response = create(client, kind, name="internal", url=url)
    assert response.status_code == 400
    assert "private, loopback or link-local" in response.content.decode()
    assert not Channel.objects.exists()


def test_private_addresses_are_accepted_when_the_setting_allows_them(client, admin, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    login(client, admin)
    assert create(client, "webhook", name="lan", url="http://10.1.2.3/hook").status_code == 302


def test_bad_email_and_ntfy_input(client, admin):
    login(client, admin)
    for kind, data in [
        ("email", {"name": "x", "address": "not-an-address"}),
        ("email", {"name": "x", "address": "a@b.example\r\nBcc: all@example.com"}),
        ("email", {"name": "x", "address": ""}),
        ("ntfy", {"name": "x", "url": PUBLIC_URL, "token": "has space"}),
        ("ntfy", {"name": "x", "url": PUBLIC_URL, "token": "t" * 201}),
    ]:
        assert create(client, kind, **data).status_code == 400, (kind, data)
    assert not Channel.objects.exists()


def test_channel_names_are_unique_per_team(client, admin, hook, other_team):
    login(client, admin)
    response = create(client, "slack", name="ops-hook", url=PUBLIC_URL)
    assert response.status_code == 400
    assert "already has a channel with this name" in response.content.decode()
    make_channel(other_team, "slack", name="same-name", url=PUBLIC_URL)
    assert create(client, "slack", name="same-name", url=PUBLIC_URL).status_code == 302


# --- editing, secrets, deleting -----------------------------------------------------------


def test_admin_edits_a_channel(client, admin, hook):
    login(client, admin)
    page = client.get(reverse("notifications:channel-edit", args=[hook.id])).content.decode()
    assert PUBLIC_URL in page
    response = client.post(
        reverse("notifications:channel-edit", args=[hook.id]),
        {"name": "renamed", "url": "https://93.184.216.35/new", "headers": "X-B: 2"},
    )
    assert response.status_code == 302
    hook.refresh_from_db()
    assert (hook.name, hook.is_enabled) == ("renamed", False)
    assert hook.config == {"url": "https://93.184.216.35/new", "headers": {"X-B": "2"}}


def test_editing_with_bad_input_changes_nothing(client, admin, hook):
    login(client, admin)
    response = client.post(
        reverse("notifications:channel-edit", args=[hook.id]),
        {"name": "renamed", "url": "http://127.0.0.1/x", "is_enabled": "on"},
    )
    assert response.status_code == 400
    hook.refresh_from_db()
    assert (hook.name, hook.config["url"]) == ("ops-hook", PUBLIC_URL)


def test_rotating_the_secret_and_deleting(client, admin, hook):
    login(client, admin)
    old = hook.secret
    client.post(reverse("notifications:channel-secret", args=[hook.id]))
    hook.refresh_from_db()
    assert hook.secret != old and len(hook.secret) >= 40
    assert client.get(reverse("notifications:channel-secret", args=[hook.id])).status_code == 405
    response = client.post(reverse("notifications:channel-delete", args=[hook.id]))
    assert response.status_code == 302
    assert not Channel.objects.exists()


# --- send a test notification -------------------------------------------------------------


def test_send_a_test_notification_shows_that_it_arrived(client, admin, team, receiver):
    channel = make_channel(team, "webhook", name="local", url=receiver.url("/in"))
    login(client, admin)
    response = client.post(
        reverse("notifications:channel-test", args=[channel.id]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Test notification delivered (HTTP 200)" in body
    assert "<html" not in body
    (request,) = receiver.requests
    assert request.json()["type"] == "test"
    delivery = Delivery.objects.get()
    assert (delivery.is_test, delivery.status, delivery.channel) == (True, "sent", channel)
    # It shows among the channel's recent deliveries.
    page = client.get(reverse("notifications:channel-detail", args=[channel.id]))
    assert "Test notification" in page.content.decode()


def test_a_failing_test_notification_says_why_and_is_not_retried(
    client, admin, team, receiver, mailoutbox
):
    receiver.script = [500]
    channel = make_channel(team, "slack", name="broken", url=receiver.url())
    login(client, admin)
    response = client.post(
        reverse("notifications:channel-test", args=[channel.id]), HTTP_HX_REQUEST="true"
    )
    assert "Test notification failed: HTTP 500" in response.content.decode()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert len(receiver.requests) == 1
    assert mailoutbox == []  # a test is not a failure to report


def test_test_notification_without_htmx_redirects_with_a_message(client, admin, team, receiver):
    channel = make_channel(team, "ntfy", url=receiver.url("/topic"))
    login(client, admin)
    response = client.post(reverse("notifications:channel-test", args=[channel.id]), follow=True)
    assert "Test notification: sent" in response.content.decode()
    assert receiver.requests[0].headers["Title"] == "[Tocsin] Test notification"


def test_a_second_test_at_once_is_refused_in_place_and_sends_nothing(client, admin, team, receiver):
    channel = make_channel(team, "webhook", name="local", url=receiver.url("/in"))
    login(client, admin)
    url = reverse("notifications:channel-test", args=[channel.id])
    assert "delivered" in client.post(url, HTTP_HX_REQUEST="true").content.decode()
    again = client.post(url, HTTP_HX_REQUEST="true")
    assert again.status_code == 200  # htmx swaps 2xx answers only
    assert "Try again in a few seconds" in again.content.decode()
    without_htmx = client.post(url, follow=True)
    assert "Try again in a few seconds" in without_htmx.content.decode()
    assert Delivery.objects.count() == 1 and len(receiver.requests) == 1


def test_the_deliveries_region_refreshes_alone(client, member, hook):
    login(client, member)
    response = client.get(
        reverse("notifications:channel-detail", args=[hook.id]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="deliveries"')
    assert "<html" not in body


# --- grouping settings --------------------------------------------------------------------


def test_members_see_grouping_but_cannot_change_it(client, member, team, settings):
    settings.NOTIFICATION_GROUP_WAIT = timedelta(seconds=30)
    settings.NOTIFICATION_GROUP_INTERVAL = timedelta(minutes=5)
    login(client, member)
    page = client.get(reverse("notifications:grouping")).content.decode()
    assert "30 s" in page and "300 s" in page
    response = client.post(
        reverse("notifications:grouping"),
        {"group_by": "tag", "group_wait": "0", "group_interval": "0"},
    )
    assert response.status_code == 403
    assert not TeamNotificationSettings.objects.exists()


def test_admin_sets_grouping(client, admin, team):
    login(client, admin)
    response = client.post(
        reverse("notifications:grouping"),
        {"group_by": "environment", "group_wait": "45", "group_interval": "600"},
    )
    assert response.status_code == 302
    saved = TeamNotificationSettings.objects.get(team=team)
    assert (saved.group_by, saved.group_wait, saved.group_interval) == (
        "environment",
        timedelta(seconds=45),
        timedelta(minutes=10),
    )


@pytest.mark.parametrize(
    "data",
    [
        {"group_by": "planet", "group_wait": "30", "group_interval": "300"},
        {"group_by": "team", "group_wait": "-1", "group_interval": "300"},
        {"group_by": "team", "group_wait": "thirty", "group_interval": "300"},
        {"group_by": "team", "group_wait": "30", "group_interval": "9" * 30},
        {"group_by": "team", "group_wait": "3601", "group_interval": "300"},
        {"group_by": "team"},
    ],
)
def test_bad_grouping_input_is_refused(client, admin, data):
    login(client, admin)
    response = client.post(reverse("notifications:grouping"), data)
    assert response.status_code == 400
    assert not TeamNotificationSettings.objects.exists()
