"""The client address behind a proxy (TRUST_PROXY_FORWARDED_FOR, apps/teams/addresses.py): the
last X-Forwarded-For entry when trusted, REMOTE_ADDR otherwise or when that entry is not an
address."""

import pytest

from apps.teams.addresses import client_address

PROXY = "10.0.0.254"


def meta(forwarded_for: str | None) -> dict[str, str]:
    found = {"REMOTE_ADDR": PROXY}
    if forwarded_for is not None:
        found["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return found


@pytest.fixture
def trusted(settings):
    settings.TRUST_PROXY_FORWARDED_FOR = True
    settings.SECURE_PROXY_SSL_HEADER = None


def test_off_by_default_the_header_is_ignored(settings):
    assert settings.TRUST_PROXY_FORWARDED_FOR is False
    settings.SECURE_PROXY_SSL_HEADER = None
    assert client_address(meta("203.0.113.7")) == PROXY


@pytest.mark.parametrize(
    ("forwarded_for", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        # A client's own header, then what the proxy appended: the proxy's entry wins.
        ("198.51.100.1, 203.0.113.7", "203.0.113.7"),
        ("198.51.100.1,203.0.113.7 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:0DB8:0::1", "2001:db8::1"),
    ],
)
def test_trusted_the_last_entry_is_the_address(trusted, forwarded_for, address):
    assert client_address(meta(forwarded_for)) == address


@pytest.mark.parametrize(
    "forwarded_for",
    [
        None,
        "",
        " , ",
        "203.0.113.7, ",  # an empty last entry: the first one is the client's, not the proxy's
        "unknown",
        "203.0.113.7:4711",
        "[2001:db8::1]",
        "256.1.1.1",
        "203.0.113.7\x00",
        "x" * 10_000,
        "203.0.113.7, evil\udcff",
    ],
)
def test_trusted_a_malformed_header_falls_back_to_remote_addr(trusted, forwarded_for):
    assert client_address(meta(forwarded_for)) == PROXY


def test_behind_the_tls_proxy_the_header_is_trusted_as_before(settings):
    settings.TRUST_PROXY_FORWARDED_FOR = False
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client_address(meta("198.51.100.1, 203.0.113.7")) == "203.0.113.7"


def test_without_remote_addr_the_answer_is_empty(settings):
    settings.TRUST_PROXY_FORWARDED_FOR = False
    assert client_address({}) == ""
