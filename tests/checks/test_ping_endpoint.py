"""The ping protocol through Django's test client, i.e. the Django view (apps/checks/views.py).

The same protocol over a real socket through the production WSGI fast path is in
test_ping_wsgi.py; the URL table and the row assertions below are shared with it.
"""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from apps.checks.models import Check, Flip, Ping
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from tests.factories import CheckFactory, TeamFactory

# suffix, the Ping.kind it records, the exit status it records
URL_FORMS = [
    pytest.param("", "success", None, id="success"),
    pytest.param("/start", "start", None, id="start"),
    pytest.param("/fail", "fail", None, id="fail"),
    pytest.param("/log", "log", None, id="log"),
    pytest.param("/0", "success", 0, id="exit-0"),
    pytest.param("/1", "fail", 1, id="exit-1"),
    pytest.param("/255", "fail", 255, id="exit-255"),
]
ADDRESSES = ["uuid", "slug"]
METHODS = ["GET", "HEAD", "POST"]
UA = "curl/8.5.0 (nightly-backup.sh)"


def ping_path(check: Check, address: str = "uuid", suffix: str = "") -> str:
    if address == "uuid":
        return f"/ping/{check.ping_token}{suffix}"
    return f"/ping/{check.team.ping_key}/{check.slug}{suffix}"


def only_ping(check: Check) -> Ping:
    pings = list(Ping.objects.filter(owner=check))
    assert len(pings) == 1, pings
    return pings[0]


def assert_check_after_first_ping(check: Check, ping: Ping) -> None:
    """The facts the ping path writes on a NEW check. It never judges a ping: every ping marks
    the check due now, and the sweeper folds it in (and classifies it) within one sweep."""
    check.refresh_from_db()
    assert check.n_pings == 1
    assert ping.n == 1
    assert check.status == Check.Status.NEW
    assert check.last_ping_at == ping.received_at
    assert check.alert_after == ping.received_at
    assert check.processed_n == 0
    assert ping.outcome == ""


def assert_nothing_recorded(check: Check) -> None:
    check.refresh_from_db()
    assert check.n_pings == 0
    assert check.last_ping_at is None
    assert not Ping.objects.filter(owner=check).exists()


def assert_plain_one_line(response_text: str, content_type: str) -> None:
    assert content_type.startswith("text/plain")
    assert response_text
    assert "\n" not in response_text.strip()


# Bad input: (path template, status, answer). {token}, {key} and {slug} are the fixture check's.
BAD_INPUT = [
    pytest.param("/ping/not-a-uuid", 404, "not found", id="not-a-uuid"),
    pytest.param("/ping/", 404, "not found", id="nothing"),
    pytest.param(f"/ping/{uuid.UUID(int=7)}", 404, "not found", id="unknown-uuid"),
    pytest.param(f"/ping/{uuid.UUID(int=7)}/fail", 404, "not found", id="unknown-uuid-fail"),
    pytest.param("/ping/{token}x", 404, "not found", id="uuid-with-extra-char"),
    pytest.param("/ping/no-such-key/{slug}", 404, "not found", id="unknown-ping-key"),
    pytest.param("/ping/{key}/no-such-slug", 404, "not found", id="unknown-slug"),
    pytest.param("/ping/{key}/{slug}/start/extra", 404, "not found", id="slug-extra-segment"),
    pytest.param("/ping/{token}/start/extra", 404, "not found", id="uuid-extra-segment"),
    pytest.param("/ping/{token}//fail", 404, "not found", id="uuid-empty-segment"),
    pytest.param("/ping/{key}", 404, "not found", id="key-without-slug"),
    pytest.param("/ping/{key}/" + "a" * 5000, 404, "not found", id="very-long-slug"),
    pytest.param("/ping/" + "k" * 5000 + "/{slug}", 404, "not found", id="very-long-key"),
    pytest.param("/ping/{key}%00/{slug}", 404, "not found", id="nul-in-key"),
    pytest.param("/ping/{key}/{slug}%00", 404, "not found", id="nul-in-slug"),
    pytest.param("/ping/{token}/../fail", 404, "not found", id="dot-dot-after-uuid"),
    pytest.param("/ping/../admin/", 404, "not found", id="dot-dot-to-admin"),
    pytest.param("/ping/%2e%2e/%2e%2e/etc/passwd", 404, "not found", id="encoded-traversal"),
    # A key, then "..", then the slug: the slug lands in the suffix position.
    pytest.param("/ping/{key}/../{slug}", 400, "invalid ping suffix", id="dot-dot-in-slug"),
    pytest.param("/ping/{token}/256", 400, "invalid exit status", id="exit-256"),
    pytest.param("/ping/{token}/-1", 400, "invalid exit status", id="exit-minus-1"),
    pytest.param("/ping/{key}/{slug}/256", 400, "invalid exit status", id="slug-exit-256"),
    pytest.param("/ping/{token}/1000000", 400, "invalid ping suffix", id="exit-7-digits"),
    pytest.param("/ping/{token}/%D9%A3", 400, "invalid ping suffix", id="arabic-digit-exit"),
    pytest.param("/ping/{token}/restart", 400, "invalid ping suffix", id="unknown-suffix"),
    pytest.param("/ping/{token}?rid=nope", 400, "invalid rid", id="rid-not-uuid"),
    pytest.param("/ping/{token}/fail?rid=1234", 400, "invalid rid", id="rid-short"),
    pytest.param("/ping/{key}/{slug}?rid=%00", 400, "invalid rid", id="rid-nul"),
]


def bad_path(template: str, check: Check) -> str:
    return template.format(token=check.ping_token, key=check.team.ping_key, slug=check.slug)


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize(("suffix", "kind", "exit_status"), URL_FORMS)
@pytest.mark.parametrize("method", METHODS)
def test_every_url_form_and_method_records_one_ping(
    client, check, method, address, suffix, kind, exit_status
):
    body = b"job output\n" if method == "POST" else b""
    before = database_now()
    response = client.generic(
        method,
        ping_path(check, address, suffix),
        data=body,
        content_type="text/plain",
        headers={"user-agent": UA},
    )
    after = database_now()

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == (b"" if method == "HEAD" else b"OK")
    ping = only_ping(check)
    assert (ping.kind, ping.exit_status, ping.method) == (kind, exit_status, method)
    assert (ping.remote_addr, ping.user_agent) == ("127.0.0.1", UA)
    assert (bytes(ping.body), ping.body_truncated, ping.run_id) == (body, False, None)
    assert before <= ping.received_at <= after
    assert_check_after_first_ping(check, ping)


@pytest.mark.parametrize("address", ADDRESSES)
def test_rid_is_stored_as_run_id(client, check, address):
    rid = uuid.uuid4()
    response = client.get(ping_path(check, address, "/start") + f"?rid={rid}")
    assert response.status_code == 200
    assert only_ping(check).run_id == rid


def test_rid_without_hyphens_or_in_upper_case_is_accepted(client, check):
    rid = uuid.uuid4()
    assert client.get(ping_path(check) + f"?rid={rid.hex.upper()}").status_code == 200
    assert only_ping(check).run_id == rid


def test_empty_rid_counts_as_no_rid(client, check):
    # `?rid=$RUN_ID` with the variable unset must not fail the job's ping (Healthchecks answers
    # 400 here; we prefer recording the ping without a run id).
    response = client.get(ping_path(check) + "?rid=")
    assert response.status_code == 200
    assert only_ping(check).run_id is None


@pytest.mark.parametrize(("template", "status", "answer"), BAD_INPUT)
def test_bad_input_is_refused_and_records_nothing(client, check, template, status, answer):
    response = client.get(bad_path(template, check))
    assert response.status_code == status
    text = response.content.decode()
    assert text.startswith(answer)
    assert_plain_one_line(text, response["Content-Type"])
    assert_nothing_recorded(check)


def test_slug_longer_than_the_column_does_not_match_its_prefix(client, team):
    # The slug used to be cut to 100 characters before the lookup, so a longer one matched
    # the check whose slug is its first 100 characters.
    check = CheckFactory(team=team, slug="s" * 100)
    assert client.get(f"/ping/{team.ping_key}/{'s' * 100}x").status_code == 404
    assert_nothing_recorded(check)
    assert client.get(f"/ping/{team.ping_key}/{'s' * 100}").status_code == 200


def test_another_teams_ping_key_does_not_reach_our_slug(client, check, other_team):
    response = client.get(f"/ping/{other_team.ping_key}/{check.slug}")
    assert response.status_code == 404
    assert_nothing_recorded(check)


def test_slug_of_another_team_with_the_same_slug_pings_only_that_team(client, check):
    twin = CheckFactory(team=TeamFactory(), slug=check.slug)
    assert client.get(ping_path(twin, "slug")).status_code == 200
    assert only_ping(twin).kind == "success"
    assert_nothing_recorded(check)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow_header(client, check, method):
    response = client.generic(method, ping_path(check), data=b"x", content_type="text/plain")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, POST"
    assert_plain_one_line(response.content.decode(), response["Content-Type"])
    assert_nothing_recorded(check)


def test_oversized_body_is_stored_truncated_and_answered_200(client, check, settings):
    settings.PING_BODY_LIMIT = 16
    body = b"0123456789abcdef" + b"the rest is dropped"
    response = client.post(ping_path(check, suffix="/1"), data=body, content_type="text/plain")
    assert response.status_code == 200
    ping = only_ping(check)
    assert bytes(ping.body) == body[:16]
    assert ping.body_truncated is True


def test_body_of_exactly_the_limit_is_not_truncated(client, check, settings):
    settings.PING_BODY_LIMIT = 16
    body = b"0123456789abcdef"
    assert client.post(ping_path(check), data=body, content_type="text/plain").status_code == 200
    ping = only_ping(check)
    assert (bytes(ping.body), ping.body_truncated) == (body, False)


def test_invalid_utf8_body_is_stored_byte_exact(client, check):
    body = b"\xff\xfe\x00 not utf-8 \xc3\x28 \xed\xa0\x80\n"
    response = client.post(ping_path(check, suffix="/log"), data=body, content_type="text/plain")
    assert response.status_code == 200
    assert bytes(only_ping(check).body) == body


def test_form_encoded_post_body_is_stored_raw(client, check):
    response = client.post(
        ping_path(check), data=b"a=1&b=%ff", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert bytes(only_ping(check).body) == b"a=1&b=%ff"


def test_user_agent_is_cut_to_its_column_and_its_nul_replaced(client, check):
    response = client.get(ping_path(check), headers={"user-agent": "a\x00b" + "c" * 300})
    assert response.status_code == 200
    assert only_ping(check).user_agent == ("a\ufffdb" + "c" * 300)[:200]


def test_no_session_cookie_or_csrf_token_is_needed_or_set(check):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(ping_path(check), data=b"done", content_type="text/plain")
    assert response.status_code == 200
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"]
    assert only_ping(check).method == "POST"


def test_success_on_an_up_check_moves_the_deadline_without_a_transition(client, check):
    assert client.get(ping_path(check)).status_code == 200
    sweep_due_checks(now=database_now())
    flips = Flip.objects.count()
    assert client.get(ping_path(check)).status_code == 200
    sweep_due_checks(now=database_now())
    check.refresh_from_db()
    latest = Ping.objects.filter(owner=check).order_by("-n").first()
    assert check.status == Check.Status.UP
    assert check.alert_after == (
        latest.received_at + check.period + django_settings.CLOCK_SKEW_ALLOWANCE
    )
    assert Flip.objects.count() == flips


def _pause(check):
    from apps.checks.services import pause_check

    pause_check(check_id=check.id, now=database_now() - timedelta(minutes=1))


def test_ping_to_paused_check_is_recorded_and_resumes_it_at_the_next_sweep(client, check):
    _pause(check)
    response = client.post(ping_path(check), data=b"back", content_type="text/plain")
    assert response.status_code == 200
    ping = only_ping(check)
    assert bytes(ping.body) == b"back"
    check.refresh_from_db()
    assert check.status == Check.Status.PAUSED  # the sweeper makes the transition
    assert check.alert_after == ping.received_at  # ... and is told to look now

    sweep_due_checks(now=database_now())
    check.refresh_from_db()
    assert check.status == Check.Status.UP
    assert check.state().paused_at is None
    flip = Flip.objects.filter(owner=check).order_by("-id").first()
    assert (flip.from_status, flip.to_status, flip.reason) == ("paused", "up", "resumed")


@pytest.mark.parametrize("suffix", ["/start", "/log"])
def test_start_or_log_ping_to_paused_check_is_recorded_but_does_not_resume(client, check, suffix):
    _pause(check)
    assert client.get(ping_path(check, suffix=suffix)).status_code == 200
    sweep_due_checks(now=database_now())
    check.refresh_from_db()
    assert check.status == Check.Status.PAUSED
    assert only_ping(check).kind == suffix[1:]


# Query budget. PostgreSQL: the whole ping is one statement (a CTE whose UPDATE feeds the
# INSERT). SQLite: the UPDATE ... RETURNING and the INSERT, wrapped by record_ping's atomic():
# inside the test's transaction that atomic() is a SAVEPOINT / RELEASE SAVEPOINT pair, both
# sent through the cursor and so counted; hence 4.
PING_QUERIES = 1 if connection.vendor == "postgresql" else 4
# A miss on SQLite stops after the UPDATE that matched nothing: SAVEPOINT, UPDATE, RELEASE.
MISS_QUERIES = 1 if connection.vendor == "postgresql" else 3


def test_record_ping_query_budget(check, django_assert_num_queries):
    with django_assert_num_queries(PING_QUERIES):
        assert record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token)
    with django_assert_num_queries(PING_QUERIES):
        assert record_ping(
            ping=PingData(kind="fail", method="POST", exit_status=2, body=b"x"),
            ping_key=check.team.ping_key,
            slug=check.slug,
        )


def test_record_ping_query_budget_for_unknown_check(db, django_assert_num_queries):
    with django_assert_num_queries(MISS_QUERIES):
        assert not record_ping(ping=PingData(kind="success", method="GET"), token=uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_record_ping_query_budget_in_autocommit(check, django_assert_num_queries):
    # As in production (no surrounding transaction). SQLite: BEGIN IMMEDIATE (our
    # transaction_mode) and COMMIT replace the savepoint pair, so the count stays 4.
    with django_assert_num_queries(PING_QUERIES):
        assert record_ping(ping=PingData(kind="success", method="GET"), token=check.ping_token)


def test_ping_request_queries_nothing_but_the_ping(client, check, django_assert_num_queries):
    # No session, user or CSRF lookups on the way in or out of the Django view.
    with django_assert_num_queries(PING_QUERIES):
        assert client.post(ping_path(check, "slug"), data=b"x", content_type="x").status_code == 200
