"""Provisioning without the UI: createteam, createmember and demo."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.teams.management.commands.demo import DEMO_PASSWORD, DEMO_TEAM, DEMO_USER
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "a-provisioned-passphrase"


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def logs_in(client, username, password) -> bool:
    """Through the real login form: a good login redirects to the dashboard."""
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302 and response.url == reverse("dashboard:check-list")


# --- createteam -------------------------------------------------------------------------------


def test_createteam_creates_a_team_and_prints_its_ping_key():
    out = run("createteam", "--name", "Platform Ops", "--slug", "platform")
    team = Team.objects.get(slug="platform")
    assert team.name == "Platform Ops"
    assert "created team platform" in out
    assert f"ping key: {team.ping_key}" in out


def test_createteam_twice_with_the_same_slug_keeps_one_team():
    run("createteam", "--name", "Ops", "--slug", "ops")
    out = run("createteam", "--name", "Ops again", "--slug", "ops")
    assert "team ops already exists" in out
    assert list(Team.objects.values_list("slug", "name")) == [("ops", "Ops")]


def test_createteam_without_slug_uses_the_name_and_is_idempotent():
    run("createteam", "--name", "Data Platform")
    run("createteam", "--name", "Data Platform")
    assert list(Team.objects.values_list("slug", flat=True)) == ["data-platform"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "   "], "--name must be 1 to 100 characters"),
        (["--name", "x" * 101], "--name must be 1 to 100 characters"),
        (["--name", "Ops", "--slug", "no spaces/allowed"], "must be letters, digits"),
        (["--name", "!!!"], "must be letters, digits"),
    ],
    ids=["blank-name", "long-name", "bad-slug", "name-without-slug-characters"],
)
def test_createteam_rejects_bad_input_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        run("createteam", *args)
    assert not Team.objects.exists()


def test_createteam_requires_a_name():
    with pytest.raises(CommandError, match="--name"):
        run("createteam")


# --- createmember -----------------------------------------------------------------------------


@pytest.fixture
def ops(db):
    run("createteam", "--name", "Ops", "--slug", "ops")
    return Team.objects.get(slug="ops")


def createmember(*extra, **options):
    args = ["--team", "ops", "--username", "dana", "--email", "dana@example.com", *extra]
    return run("createmember", *args, **options)


def test_createmember_with_password_option_creates_a_user_who_can_log_in(ops, client):
    out = createmember("--role", "admin", "--password", PASSWORD)
    user = User.objects.get(username="dana")
    assert user.email == "dana@example.com"
    assert Membership.objects.get(team=ops, user=user).role == Membership.Role.ADMIN
    assert out.strip() == "dana is admin of ops"
    assert logs_in(client, "dana", PASSWORD)


def test_createmember_takes_the_password_from_tocsin_password(ops, client, monkeypatch):
    monkeypatch.setenv("TOCSIN_PASSWORD", PASSWORD)
    createmember()
    assert Membership.objects.get(team=ops).role == Membership.Role.MEMBER
    assert logs_in(client, "dana", PASSWORD)


def test_the_password_option_wins_over_the_environment(ops, client, monkeypatch):
    monkeypatch.setenv("TOCSIN_PASSWORD", "from-the-environment")
    createmember("--password", PASSWORD)
    assert logs_in(client, "dana", PASSWORD)
    assert not logs_in(client, "dana", "from-the-environment")


def test_createmember_without_a_password_says_the_user_cannot_log_in(ops, client, monkeypatch):
    monkeypatch.delenv("TOCSIN_PASSWORD", raising=False)
    out = createmember()
    assert "no password set: the user cannot log in yet" in out
    assert not User.objects.get(username="dana").has_usable_password()
    assert not logs_in(client, "dana", "")


def test_createmember_again_updates_role_email_and_password_in_place(ops, client):
    createmember("--role", "viewer", "--password", "first-passphrase")
    run(
        "createmember",
        "--team=ops",
        "--username=dana",
        "--email=dana@new.example",
        "--role=owner",
        f"--password={PASSWORD}",
    )
    user = User.objects.get(username="dana")
    assert user.email == "dana@new.example"
    assert list(Membership.objects.values_list("role", flat=True)) == ["owner"]
    assert logs_in(client, "dana", PASSWORD)


def test_createmember_again_without_password_keeps_the_old_one(ops, client, monkeypatch):
    monkeypatch.delenv("TOCSIN_PASSWORD", raising=False)
    createmember("--password", PASSWORD)
    createmember("--role", "admin")
    assert logs_in(client, "dana", PASSWORD)


def test_one_user_can_join_a_second_team(ops):
    createmember("--password", PASSWORD)
    run("createteam", "--name", "Web", "--slug", "web")
    run("createmember", "--team=web", "--username=dana", "--email=dana@example.com")
    assert sorted(Membership.objects.values_list("team__slug", flat=True)) == ["ops", "web"]
    assert User.objects.count() == 1


def test_createmember_for_an_unknown_team_is_refused(ops):
    with pytest.raises(CommandError, match=r"No team with slug 'nope'\. Create it with createteam"):
        run("createmember", "--team=nope", "--username=dana", "--email=dana@example.com")
    assert not User.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "dana@", "@example.com", ""])
def test_createmember_with_a_bad_email_is_refused(ops, email):
    with pytest.raises(CommandError, match="is not a valid email address"):
        run("createmember", "--team=ops", "--username=dana", f"--email={email}")
    assert not User.objects.exists()


def test_createmember_with_a_bad_role_on_the_command_line_is_refused(ops):
    with pytest.raises(CommandError, match="argument --role: invalid choice: 'boss'"):
        createmember("--role", "boss")
    assert not User.objects.exists()


def test_createmember_with_a_bad_role_from_call_command_is_refused(ops):
    with pytest.raises(CommandError, match="'boss' is not a role; use one of owner, admin"):
        createmember(role="boss")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("   ", "must be 1 to 150 characters"),
        ("x" * 151, "must be 1 to 150 characters"),
        ("dana smith", "may hold only letters, digits"),
        ("<script>", "may hold only letters, digits"),
    ],
    ids=["blank", "too-long", "space", "markup"],
)
def test_createmember_with_a_bad_username_is_refused(ops, username, message):
    with pytest.raises(CommandError, match=message):
        run("createmember", "--team=ops", f"--username={username}", "--email=d@example.com")
    assert not User.objects.exists()


def test_createmember_requires_team_username_and_email(ops):
    with pytest.raises(CommandError, match="the following arguments are required"):
        run("createmember", "--team=ops")


# --- demo -------------------------------------------------------------------------------------


def test_demo_creates_a_team_and_a_login_and_prints_them_with_the_url(client):
    out = run("demo", "--url", "http://127.0.0.1:8123/")
    team = Team.objects.get(slug=DEMO_TEAM)
    assert "Tocsin is starting at http://127.0.0.1:8123/" in out
    assert f"Log in as {DEMO_USER} / {DEMO_PASSWORD}" in out
    assert team.ping_key in out
    membership = Membership.objects.get(team=team, user__username=DEMO_USER)
    assert membership.role == Membership.Role.OWNER
    assert logs_in(client, DEMO_USER, DEMO_PASSWORD)


def test_demo_twice_keeps_one_team_and_one_login(client):
    first = run("demo")
    second = run("demo")
    assert Team.objects.filter(slug=DEMO_TEAM).count() == 1
    assert Membership.objects.count() == 1
    assert User.objects.filter(username=DEMO_USER).count() == 1
    ping_key = Team.objects.get(slug=DEMO_TEAM).ping_key
    assert ping_key in first
    assert ping_key in second
    assert logs_in(client, DEMO_USER, DEMO_PASSWORD)
