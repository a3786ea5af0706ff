"""The ping protocol over a real socket through the production WSGI app (config.wsgi: the fast
path in front of Django), served by tests/live.py. The server threads see only committed rows,
so every test here runs on a transactional database."""

import threading
import uuid

import pytest

from apps.checks.models import Check, Ping
from tests.checks.test_ping_endpoint import (
    ADDRESSES,
    BAD_INPUT,
    METHODS,
    UA,
    URL_FORMS,
    assert_check_after_first_ping,
    assert_nothing_recorded,
    assert_plain_one_line,
    bad_path,
    only_ping,
    ping_path,
)
from tests.live import fetch

FAST_PATH_HEADERS = {
    "Content-Type": "text/plain; charset=utf-8",
    "Cache-Control": "no-cache, no-store, must-revalidate, max-age=0",
    "Access-Control-Allow-Origin": "*",
}


def assert_fast_path_headers(reply) -> None:
    for name, value in FAST_PATH_HEADERS.items():
        assert reply.headers[name] == value
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert "Set-Cookie" not in reply.headers


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize(("suffix", "kind", "exit_status"), URL_FORMS)
@pytest.mark.parametrize("method", METHODS)
def test_every_url_form_and_method_records_one_ping(
    live_app_url, check, method, address, suffix, kind, exit_status
):
    body = b"job output\n" if method == "POST" else None
    rid = uuid.uuid4()
    reply = fetch(
        live_app_url,
        method,
        ping_path(check, address, suffix) + f"?rid={rid}",
        body=body,
        headers={"User-Agent": UA},
    )

    assert (reply.status, reply.reason) == (200, "OK")
    assert reply.body == (b"" if method == "HEAD" else b"OK")
    assert_fast_path_headers(reply)
    ping = only_ping(check)
    assert (ping.kind, ping.exit_status, ping.method, ping.run_id) == (
        kind,
        exit_status,
        method,
        rid,
    )
    assert (ping.remote_addr, ping.user_agent) == ("127.0.0.1", UA)
    assert (bytes(ping.body), ping.body_truncated) == (body or b"", False)
    assert_check_after_first_ping(check, ping)


@pytest.mark.parametrize(("template", "status", "answer"), BAD_INPUT)
def test_bad_input_is_refused_and_records_nothing(live_app_url, check, template, status, answer):
    reply = fetch(live_app_url, "GET", bad_path(template, check))
    assert reply.status == status
    assert reply.text.startswith(answer)
    assert_plain_one_line(reply.text, reply.headers["Content-Type"])
    assert_fast_path_headers(reply)
    assert_nothing_recorded(check)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/ping/{token}%0A", id="newline-after-uuid"),
        pytest.param("/ping/{token}/3%0A", id="newline-after-exit-status"),
    ],
)
def test_percent_encoded_newline_is_a_plain_refusal_not_a_500(live_app_url, check, path):
    # `$` in the path patterns used to match before a trailing newline: UUID() then raised and
    # the server answered 500.
    reply = fetch(live_app_url, "GET", bad_path(path, check))
    assert reply.status in (400, 404)
    assert_plain_one_line(reply.text, reply.headers["Content-Type"])
    assert_nothing_recorded(check)


def test_empty_rid_counts_as_no_rid(live_app_url, check):
    assert fetch(live_app_url, "GET", ping_path(check) + "?rid=").status == 200
    assert only_ping(check).run_id is None


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_405_with_allow_header(live_app_url, check, method):
    reply = fetch(live_app_url, method, ping_path(check), body=b"x")
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, HEAD, POST"
    assert_plain_one_line(reply.text, reply.headers["Content-Type"])
    assert_nothing_recorded(check)


def test_oversized_body_is_stored_truncated_and_answered_200(live_app_url, check, settings):
    # The fast path reads the limit per request (it used to freeze it at import).
    settings.PING_BODY_LIMIT = 16
    body = b"0123456789abcdef" + b"x" * 100_000
    reply = fetch(live_app_url, "POST", ping_path(check, "slug", "/2"), body=body)
    assert reply.status == 200
    ping = only_ping(check)
    assert (bytes(ping.body), ping.body_truncated) == (body[:16], True)
    assert (ping.kind, ping.exit_status) == ("fail", 2)


def test_body_over_the_default_limit_is_truncated(live_app_url, check, settings):
    limit = settings.PING_BODY_LIMIT
    assert limit == 100 * 1024
    body = bytes(range(256)) * (limit // 256) + b"tail that is dropped"
    reply = fetch(live_app_url, "POST", ping_path(check, suffix="/log"), body=body)
    assert reply.status == 200
    ping = only_ping(check)
    assert (bytes(ping.body), ping.body_truncated) == (body[:limit], True)


def test_invalid_utf8_body_is_stored_byte_exact(live_app_url, check):
    body = b"\xff\xfe\x00 not utf-8 \xc3\x28 \xed\xa0\x80\n"
    assert fetch(live_app_url, "POST", ping_path(check, suffix="/1"), body=body).status == 200
    assert bytes(only_ping(check).body) == body


def test_malformed_content_length_still_records_the_ping(live_app_url, check):
    # A broken client must not lose its check-in: the body is dropped, the ping counts.
    reply = fetch(
        live_app_url, "POST", ping_path(check), body=b"", headers={"Content-Length": "abc"}
    )
    assert reply.status == 200
    ping = only_ping(check)
    assert (ping.method, bytes(ping.body)) == ("POST", b"")


def test_chunked_body_without_length_still_records_the_ping(live_app_url, check):
    # wsgiref neither decodes chunked bodies nor marks the input terminated, so the fast path
    # must not block reading an unbounded stream: it records the ping without the body.
    # (Under gunicorn, which sets wsgi.input_terminated, the body is read up to the limit.)
    reply = fetch(
        live_app_url,
        "POST",
        ping_path(check),
        body=b"5\r\nhello\r\n0\r\n\r\n",
        headers={"Transfer-Encoding": "chunked"},
    )
    assert reply.status == 200
    assert only_ping(check).method == "POST"


def test_hostile_user_agent_does_not_cost_the_ping(live_app_url, check):
    reply = fetch(live_app_url, "GET", ping_path(check), headers={"User-Agent": "é" + "x" * 400})
    assert reply.status == 200
    ping = only_ping(check)
    assert len(ping.user_agent) == 200


def test_no_session_or_csrf_needed_for_post(live_app_url, check):
    reply = fetch(
        live_app_url,
        "POST",
        ping_path(check, "slug", "/fail"),
        body=b"disk full",
        headers={"Origin": "https://evil.example", "Cookie": "sessionid=forged"},
    )
    assert reply.status == 200
    assert "Set-Cookie" not in reply.headers
    assert bytes(only_ping(check).body) == b"disk full"


def test_paths_outside_ping_are_served_by_django(live_app_url, db):
    reply = fetch(live_app_url, "GET", "/healthz")
    assert reply.headers["Content-Type"] == "application/json"
    login = fetch(live_app_url, "GET", "/login/")
    assert login.status == 200
    assert "Set-Cookie" in login.headers  # Django's CSRF cookie: the full stack ran


def test_concurrent_pings_to_one_check_each_get_their_own_number(live_app_url, check):
    n_requests = 24
    barrier = threading.Barrier(n_requests)
    statuses = []

    def send(i):
        barrier.wait()
        statuses.append(fetch(live_app_url, "POST", ping_path(check), body=str(i).encode()).status)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n_requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * n_requests
    check.refresh_from_db()
    assert check.n_pings == n_requests
    pings = Ping.objects.filter(owner=check)
    assert sorted(pings.values_list("n", flat=True)) == list(range(1, n_requests + 1))
    assert sorted(int(bytes(p.body)) for p in pings) == list(range(n_requests))
    # The check's facts come from the ping that updated it last (the highest number). Its stamp
    # is not always the latest: now() is when a transaction began, and a ping that began first
    # may wait on the row lock and update last. The gap is one lock wait (milliseconds), well
    # inside CLOCK_SKEW_ALLOWANCE.
    assert check.last_ping_at == pings.get(n=n_requests).received_at
    assert Check.objects.get(id=check.id).status == Check.Status.NEW
