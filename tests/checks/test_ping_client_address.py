"""The address a ping records behind a proxy (TRUST_PROXY_FORWARDED_FOR): the Django view and
the production fast path (config.wsgi over a real socket) both take it from
apps/teams/addresses.py, at no extra query."""

import pytest

from tests.checks.test_ping_endpoint import PING_QUERIES, only_ping
from tests.live import fetch

FORWARDED = {"HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}


@pytest.fixture
def trusted(settings):
    settings.TRUST_PROXY_FORWARDED_FOR = True


def test_trusted_the_view_records_the_last_entry_at_no_extra_query(
    trusted, client, check, django_assert_num_queries
):
    with django_assert_num_queries(PING_QUERIES):
        reply = client.get(f"/ping/{check.ping_token}", REMOTE_ADDR="10.0.0.254", **FORWARDED)
    assert reply.status_code == 200
    assert only_ping(check).remote_addr == "203.0.113.7"


def test_untrusted_the_view_records_the_peer(settings, client, check):
    settings.SECURE_PROXY_SSL_HEADER = None
    client.get(f"/ping/{check.ping_token}", REMOTE_ADDR="10.0.0.254", **FORWARDED)
    assert only_ping(check).remote_addr == "10.0.0.254"


def test_trusted_a_malformed_header_records_the_peer(trusted, client, check):
    client.get(
        f"/ping/{check.ping_token}", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="not-an-ip"
    )
    assert only_ping(check).remote_addr == "10.0.0.254"


@pytest.mark.parametrize(
    ("trust", "forwarded_for", "recorded"),
    [
        (True, "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (True, "<script>", "127.0.0.1"),
        (False, "203.0.113.7", "127.0.0.1"),
    ],
)
def test_the_fast_path_records_the_same_address(
    settings, live_app_url, check, trust, forwarded_for, recorded
):
    settings.TRUST_PROXY_FORWARDED_FOR = trust
    settings.SECURE_PROXY_SSL_HEADER = None
    reply = fetch(
        live_app_url,
        "POST",
        f"/ping/{check.ping_token}",
        body=b"x",
        headers={"X-Forwarded-For": forwarded_for},
    )
    assert reply.status == 200
    assert only_ping(check).remote_addr == recorded
