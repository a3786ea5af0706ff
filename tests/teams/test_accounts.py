"""Sign up, password reset by email and the login page's links, through Django's test client."""

import re

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.teams import throttle
from apps.teams.models import Membership, Team
from apps.teams.password_reset import send_password_reset
from config.celery import app as celery_app
from tests.checks.test_sweeper import purge_task_queue  # noqa: F401 (a fixture)

SIGNUP = reverse("teams:signup")
RESET = reverse("password_reset")
PASSWORD = "a long enough passphrase"
VALID = {
    "team_name": "Ops & Friends",
    "username": "dana",
    "email": "dana@example.com",
    "password1": PASSWORD,
    "password2": PASSWORD,
}
User = get_user_model()


def counts():
    return User.objects.count(), Team.objects.count(), Membership.objects.count()


def test_sign_up_creates_a_team_owned_by_the_new_user_and_logs_in(client, db):
    response = client.post(SIGNUP, VALID)
    assert response.status_code == 302
    assert response.url == reverse("dashboard:check-list")
    user = User.objects.get(username="dana")
    membership = Membership.objects.get(user=user)
    assert membership.role == Membership.Role.OWNER
    assert membership.team.name == "Ops & Friends"
    assert membership.team.slug == "ops-friends"
    assert user.email == "dana@example.com"
    assert user.check_password(PASSWORD)
    assert client.session[SESSION_KEY] == str(user.pk)
    page = client.get(response.url)
    assertContains(page, "Checks of Ops &amp; Friends")
    assertContains(page, "You own the team")


def test_two_teams_with_the_same_name_get_distinct_slugs(client, db):
    client.post(SIGNUP, VALID)
    Client().post(SIGNUP, {**VALID, "username": "erin", "email": "erin@example.com"})
    assert sorted(Team.objects.values_list("slug", flat=True)) == ["ops-friends", "ops-friends-2"]


def test_sign_up_page_has_labelled_fields(client, db):
    response = client.get(SIGNUP)
    assert response.status_code == 200
    for field in ("team_name", "username", "email", "password1", "password2"):
        assertContains(response, f'<label for="id_{field}">')


BAD_SIGNUPS = {
    "missing team": ({"team_name": ""}, "team_name", "This field is required."),
    "blank team": ({"team_name": "   "}, "team_name", "This field is required."),
    "oversized team": ({"team_name": "x" * 101}, "team_name", "at most 100 characters"),
    "bad email": ({"email": "not-an-email"}, "email", "Enter a valid email address."),
    "missing email": ({"email": ""}, "email", "This field is required."),
    "passwords differ": ({"password2": "something else"}, "password2", "t match."),
    "short password": (
        {"password1": "short", "password2": "short"},
        "password2",
        "too short",
    ),
    "common password": (
        {"password1": "password123", "password2": "password123"},
        "password2",
        "too common",
    ),
    "hostile username": ({"username": "<script>x</script>"}, "username", "Enter a valid"),
    "oversized username": ({"username": "u" * 151}, "username", "at most 150 characters"),
}


@pytest.mark.parametrize(("change", "field", "message"), BAD_SIGNUPS.values(), ids=BAD_SIGNUPS)
def test_invalid_sign_up_says_why_next_to_the_field_and_creates_nothing(
    client, db, change, field, message
):
    response = client.post(SIGNUP, {**VALID, **change})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)
    body = response.content.decode()
    error = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', body, re.S)
    assert error, body
    assert message in error.group(1)
    assert SESSION_KEY not in client.session
    assert "<script>x</script>" not in body


def test_sign_up_with_a_taken_username_is_refused_whatever_its_case(client, owner):
    before = counts()
    response = client.post(SIGNUP, {**VALID, "username": "ALICE"})
    assert response.status_code == 400
    assertContains(response, "A user with that username already exists.", status_code=400)
    assert counts() == before


def test_empty_sign_up_post_is_a_form_error(client, db):
    response = client.post(SIGNUP, {})
    assert response.status_code == 400
    assert counts() == (0, 0, 0)


def test_sign_up_without_csrf_token_is_refused(db):
    client = Client(enforce_csrf_checks=True)
    assert client.post(SIGNUP, VALID).status_code == 403
    assert counts() == (0, 0, 0)


def test_signed_in_user_is_sent_from_sign_up_to_the_checks(owner_client):
    before = counts()
    response = owner_client.post(SIGNUP, {**VALID, "username": "other"})
    assert response.status_code == 302
    assert counts() == before


def test_login_page_links_to_sign_up_and_password_reset(client, db):
    response = client.get(reverse("login"))
    assertContains(response, f'href="{SIGNUP}"')
    assertContains(response, f'href="{RESET}"')


# --- password reset ---------------------------------------------------------------------------


RESET_TASK = "apps.teams.tasks.send_password_reset_task"


@pytest.fixture
def reset_worker(celery_worker):
    """The worker that sends reset links; `wait(n)` returns once it has handled n requests."""

    def wait(n: int = 1) -> list:
        celery_worker.wait_for(
            lambda: sum(1 for name, _ in celery_worker.finished if name == RESET_TASK) >= n,
            what=f"{n} password reset task(s)",
        )
        return mail.outbox

    return wait


def queued_messages() -> int:
    """Messages waiting in this session's default queue (no worker is running)."""
    with celery_app.connection_for_write() as connection:
        _, count, _ = connection.default_channel.queue_declare(
            queue=celery_app.conf.task_default_queue, passive=True
        )
    return count


def reset_link(message) -> str:
    match = re.search(r"https://tocsin\.example(/password-reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_password_reset_mails_a_link_on_the_site_url_that_sets_a_new_password(
    client, owner, settings, reset_worker
):
    # Even behind a proxy that lets any Host through, the link is built from SITE_URL.
    settings.ALLOWED_HOSTS = ["*"]
    response = client.post(RESET, {"email": owner.email}, headers={"host": "evil.example"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert len(reset_worker(1)) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    assert message.subject == "Reset your Tocsin password"
    assert "evil.example" not in message.body  # the link never follows the Host header
    link = reset_link(message)
    form_page = client.get(link, follow=True)
    assertContains(form_page, "Choose a new password")
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)
    # The link works once.
    again = client.get(link, follow=True)
    assertContains(again, "This link is not valid")


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(
    client, owner, reset_worker
):
    response = client.post(RESET, {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response.url == reverse("password_reset_done")
    assert reset_worker(1) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purge_task_queue")
def test_the_reset_request_only_enqueues_the_same_task_for_known_and_unknown_addresses(
    owner,
):
    """Issue 14: the mail used to be sent inside the request (58 ms for a known address, 9 ms
    for an unknown one). Now neither request looks the account up or sends anything: each
    leaves one message for the worker, and both answers are the same."""
    answers = []
    for n, email in enumerate((owner.email, "nobody@example.com")):
        response = post_from(f"10.0.11.{n}", RESET, {"email": email})
        answers.append((response.status_code, response.url))
        assert queued_messages() == n + 1
    assert answers[0] == answers[1] == (302, reverse("password_reset_done"))
    assert mail.outbox == []  # nothing was sent by the requests themselves


def test_the_reset_task_mails_known_addresses_only(owner, member):
    assert send_password_reset(email=owner.email.upper()) == 1
    assert send_password_reset(email="nobody@example.com") == 0
    assert send_password_reset(email="not an address") == 0
    assert send_password_reset(email="x" * 300 + "@example.com") == 0
    owner.set_unusable_password()
    owner.save()
    assert send_password_reset(email=owner.email) == 0
    (message,) = mail.outbox
    assert reset_link(message).startswith("/password-reset/")


@pytest.mark.parametrize("email", ["", "not-an-email", "x" * 300 + "@example.com"])
def test_password_reset_with_a_malformed_address_says_so(client, owner, email):
    response = client.post(RESET, {"email": email})
    assert response.status_code == 200
    assertContains(response, 'class="errorlist"')
    assert mail.outbox == []


def test_tampered_reset_link_is_refused_and_changes_nothing(client, owner, reset_worker):
    client.post(RESET, {"email": owner.email})
    link = reset_link(reset_worker(1)[0])
    tampered = link[:-3] + "xyz/"
    response = client.get(tampered, follow=True)
    assertContains(response, "This link is not valid")
    assertNotContains(response, "new_password1")
    owner.refresh_from_db()
    assert owner.check_password("correct horse battery")


def test_reset_with_mismatched_passwords_keeps_the_old_one(client, owner, reset_worker):
    client.post(RESET, {"email": owner.email})
    form_page = client.get(reset_link(reset_worker(1)[0]), follow=True)
    set_url = form_page.redirect_chain[-1][0]
    response = client.post(set_url, {"new_password1": PASSWORD, "new_password2": "different"})
    assert response.status_code == 200
    assertContains(response, 'class="errorlist"')
    owner.refresh_from_db()
    assert owner.check_password("correct horse battery")


# --- rate limits (apps/teams/throttle.py) -------------------------------------------------------

LOGIN = reverse("login")
THROTTLED = "Too many attempts: nothing was done."
OWNER_PASSWORD = "correct horse battery"  # tests/factories.py


def post_from(address: str, url: str, data: dict, client=None):
    return (client or Client()).post(url, data, REMOTE_ADDR=address)


def assert_throttled(response, wait: str):
    assert response.status_code == 429
    assert response["Retry-After"] == str({"15 minutes": 900, "60 minutes": 3600}[wait])
    assertContains(response, f"{THROTTLED} Wait {wait} and try again.", status_code=429)
    assertContains(response, 'role="alert" id="throttled"', status_code=429)


def test_login_failures_per_account_are_limited_whatever_the_address(client, owner, member):
    for n in range(throttle.LOGIN_FAILURES_PER_ACCOUNT.attempts):
        response = post_from(f"10.0.1.{n}", LOGIN, {"username": "alice", "password": "guess"})
        assert response.status_code == 200  # a plain failure so far
    # Even the right password is refused now, from a new address, in another case.
    client = Client()
    response = post_from(
        "10.0.2.1", LOGIN, {"username": "ALICE", "password": OWNER_PASSWORD}, client
    )
    assert_throttled(response, "15 minutes")
    assert SESSION_KEY not in client.session
    # Another account from the same address is not affected.
    response = post_from("10.0.1.0", LOGIN, {"username": "bob", "password": OWNER_PASSWORD})
    assert response.status_code == 302


def test_successful_logins_do_not_use_up_the_account_limit(owner):
    for n in range(throttle.LOGIN_FAILURES_PER_ACCOUNT.attempts + 2):
        response = post_from(
            f"10.0.3.{n}", LOGIN, {"username": "alice", "password": OWNER_PASSWORD}
        )
        assert response.status_code == 302


def test_login_attempts_per_address_are_limited(client, owner):
    for n in range(throttle.LOGIN_PER_ADDRESS.attempts):
        post_from("10.0.4.1", LOGIN, {"username": f"user{n}", "password": "guess"})
    client = Client()
    response = post_from(
        "10.0.4.1", LOGIN, {"username": "alice", "password": OWNER_PASSWORD}, client
    )
    assert_throttled(response, "15 minutes")
    assert SESSION_KEY not in client.session
    assert (
        post_from("10.0.4.2", LOGIN, {"username": "alice", "password": OWNER_PASSWORD}).status_code
        == 302
    )


@pytest.mark.parametrize(
    "username",
    ["", "x" * 10_000, "<script>alert(1)</script>", "a\x00b"],
    ids=["empty", "oversized", "hostile", "nul"],
)
def test_login_with_odd_usernames_counts_and_refuses_cleanly(db, username):
    for _ in range(throttle.LOGIN_FAILURES_PER_ACCOUNT.attempts):
        response = post_from("10.0.5.1", LOGIN, {"username": username, "password": "guess"})
        assert response.status_code in (200, 400)
    response = post_from("10.0.5.1", LOGIN, {"username": username, "password": "guess"})
    if username:
        assert_throttled(response, "15 minutes")
    assertNotContains(response, "<script>alert(1)", status_code=response.status_code)


def test_sign_ups_per_address_are_limited_and_create_nothing(db):
    for n in range(throttle.SIGNUP_PER_ADDRESS.attempts):
        data = {**VALID, "username": f"user{n}", "email": f"user{n}@example.com"}
        assert post_from("10.0.6.1", SIGNUP, data).status_code == 302
    before = counts()
    response = post_from("10.0.6.1", SIGNUP, VALID)
    assert_throttled(response, "60 minutes")
    assertContains(response, "Create account and team", status_code=429)
    assert counts() == before
    assert not User.objects.filter(username="dana").exists()
    assert post_from("10.0.6.2", SIGNUP, VALID).status_code == 302


def test_sign_ups_per_email_are_limited(db):
    for n in range(throttle.SIGNUP_PER_EMAIL.attempts):
        # Invalid (passwords differ) but counted: each attempt costs the same.
        data = {**VALID, "password2": "different"}
        assert post_from(f"10.0.7.{n}", SIGNUP, data).status_code == 400
    response = post_from("10.0.7.99", SIGNUP, {**VALID, "email": " Dana@Example.com "})
    assert_throttled(response, "60 minutes")
    assert counts() == (0, 0, 0)


def test_password_reset_per_email_is_limited_and_says_nothing_about_accounts(owner, reset_worker):
    known, unknown = owner.email, "nobody@example.com"
    for n in range(throttle.RESET_PER_EMAIL.attempts):
        for email in (known, unknown):
            response = post_from(f"10.0.8.{n}", RESET, {"email": email})
            assert response.status_code == 302
    assert len(reset_worker(2 * throttle.RESET_PER_EMAIL.attempts)) == (
        throttle.RESET_PER_EMAIL.attempts
    )
    refused = {}
    for email in (known, unknown):
        response = post_from("10.0.8.99", RESET, {"email": email})
        assert_throttled(response, "60 minutes")
        refused[email] = response.content.decode()
    # The same page whether or not the account exists (bar the CSRF token), and no email.
    strip_token = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"|"x-csrftoken": "[^"]+"')
    assert strip_token.sub("", refused[known]) == strip_token.sub("", refused[unknown])
    # A refused attempt enqueues nothing: after one more accepted request, one more task.
    post_from("10.0.8.200", RESET, {"email": "someone-else@example.com"})
    reset_worker(2 * throttle.RESET_PER_EMAIL.attempts + 1)
    assert len(mail.outbox) == throttle.RESET_PER_EMAIL.attempts


def test_password_reset_per_address_is_limited(owner, reset_worker):
    for n in range(throttle.RESET_PER_ADDRESS.attempts):
        post_from("10.0.9.1", RESET, {"email": f"someone{n}@example.com"})
    response = post_from("10.0.9.1", RESET, {"email": owner.email})
    assert_throttled(response, "60 minutes")
    assert post_from("10.0.9.2", RESET, {"email": owner.email}).status_code == 302
    assert len(reset_worker(throttle.RESET_PER_ADDRESS.attempts + 1)) == 1


def test_behind_the_tls_proxy_the_address_the_proxy_saw_counts(settings, owner):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    for n in range(throttle.RESET_PER_ADDRESS.attempts):
        Client().post(
            RESET,
            {"email": f"someone{n}@example.com"},
            REMOTE_ADDR="10.0.0.254",  # the proxy
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 203.0.113.7",  # a forged first entry
        )
    forged = Client().post(
        RESET,
        {"email": owner.email},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR="198.51.100.200, 203.0.113.7",
    )
    assert forged.status_code == 429
    other = Client().post(
        RESET, {"email": owner.email}, REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="203.0.113.8"
    )
    assert other.status_code == 302


@pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set: the cache is in memory")
def test_counts_are_kept_in_redis_where_every_web_process_sees_them(settings, owner):
    import redis

    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    post_from("10.0.10.1", LOGIN, {"username": "alice", "password": "guess"})
    # A separate connection (another web process) finds the counts.
    server = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"{settings.CACHES['default']['KEY_PREFIX']}:*account-throttle:*"
    keys = sorted(k.decode() for k in server.scan_iter(match=pattern))
    assert len(keys) == 2 and {k.split(":")[-2] for k in keys} == {"login-address", "login-account"}
    assert all(0 < server.ttl(k) <= 900 for k in keys)
    assert all(server.get(k) == b"1" for k in keys)


def test_with_the_cache_down_people_can_still_log_in(settings, owner):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = post_from("10.0.11.1", LOGIN, {"username": "alice", "password": OWNER_PASSWORD})
    assert response.status_code == 302
