"""Property: random bytes in every field of a ping (path, query, headers, body) never stop a
check from being judged (issue 14). Each example sends a few hostile pings through the
production WSGI app (config.wsgi: the ping fast path in front of Django) with the environ a
WSGI server builds from raw bytes (PEP 3333: latin-1 strings), then sweeps: no answer is a
server error, no sweep raises, and every check has every ping folded in."""

import io
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.checks.models import Check, Ping
from apps.checks.sweeper import sweep_due_checks
from apps.clock import database_now
from config.wsgi import application
from tests.factories import CheckFactory

# Successes and failures most often, so that incidents open and resolve (and store the body's
# tail) again and again within one run.
SUFFIXES = ["", "/fail", "/0", "/1", "", "/fail", "/0", "/1"]
SUFFIXES += ["/", "/start", "/log", "/progress", "/255", "/256", "/-1"]
QUERY_NAMES = ["rid", "attempt", "max_attempts", "processed", "failed", "done", "total", "ts"]
# Bytes that matter most to a text column or a parser, and any byte at all.
NASTY = st.sampled_from(
    [b"\x00"] * 4  # NUL most: PostgreSQL's text and jsonb refuse it
    + [b"\xff", b"\xed\xa0\x80", b"\xc3", b"%00", b"%ff", b"\r", b"\n", b"&", b"=", b"/"]
)
hostile_bytes = st.lists(st.one_of(st.binary(max_size=12), NASTY), max_size=8).map(b"".join)
# A field that is often left alone: a hostile ts or rid makes the ping a 400 before it is
# stored, and the interesting cases are the pings that are stored and judged.
sometimes_hostile = st.sampled_from([False, False, False, True]).flatmap(
    lambda hostile: hostile_bytes if hostile else st.just(b"")
)


def latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


@st.composite
def hostile_pings(draw):
    """The environ of one hostile ping; PATH_INFO holds a placeholder for the check's part."""
    target = draw(st.sampled_from(["{a}", "{b}", "{key}/{a_slug}", "{key}/fresh"]))
    suffix = draw(
        st.sampled_from([False, False, True]).flatmap(
            lambda hostile: (
                hostile_bytes.map(lambda b: "/" + latin1(b))
                if hostile
                else st.sampled_from(SUFFIXES)
            )
        )
    )
    query_parts = draw(
        st.sampled_from([False, False, True]).flatmap(
            lambda hostile: (
                st.just([])
                if not hostile
                else st.lists(
                    st.tuples(
                        st.one_of(st.sampled_from(QUERY_NAMES), hostile_bytes.map(latin1)),
                        hostile_bytes,
                    ),
                    max_size=4,
                )
            ),
        )
    )
    query = "&".join(f"{name}={latin1(value)}" for name, value in query_parts)
    if draw(st.booleans()):
        query += "&create=1"
    body = draw(st.one_of(hostile_bytes, st.binary(max_size=2000)))
    return {
        "REQUEST_METHOD": draw(st.sampled_from(["POST", "POST", "POST", "GET", "HEAD", "PUT"])),
        "PATH_INFO": "/ping/" + target + suffix,
        "QUERY_STRING": query,
        "HTTP_USER_AGENT": latin1(draw(hostile_bytes)),
        "HTTP_X_TOCSIN_SENT_AT": latin1(draw(sometimes_hostile)),
        "HTTP_X_ANYTHING": latin1(draw(hostile_bytes)),
        "REMOTE_ADDR": latin1(draw(hostile_bytes)) or "203.0.113.9",
        "CONTENT_TYPE": latin1(draw(hostile_bytes)),
        "CONTENT_LENGTH": str(len(body)),
        "body": body,
    }


def call_wsgi(fields: dict) -> int:
    body = fields.pop("body")
    environ = {
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_HOST": "localhost",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **fields,
    }
    statuses = []
    chunks = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return int(statuses[0].split()[0])


# Transactional: the fast path closes the connection after each ping when it is not in
# autocommit mode (as after any request), which would end a test wrapped in a transaction.
@pytest.mark.django_db(transaction=True)
def test_random_bytes_in_every_ping_field_never_stop_a_check_from_being_judged(team):
    examples = iter(range(10_000))

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(hostile_pings(), min_size=1, max_size=8))
    def pings_then_sweep(pings):
        # Fresh checks for every example: a new check's first failure opens an incident, which
        # stores what the ping said (the path where a NUL used to jam the check).
        n = next(examples)
        a = CheckFactory(team=team, slug=f"job-a-{n}")
        b = CheckFactory(team=team, slug=f"job-b-{n}")
        names = {"a": a.ping_token, "b": b.ping_token, "key": team.ping_key, "a_slug": a.slug}
        for fields in pings:
            # str.replace, not format(): the hostile suffix may hold braces.
            for name, value in names.items():
                fields["PATH_INFO"] = fields["PATH_INFO"].replace("{" + name + "}", str(value), 1)
            status = call_wsgi(fields)
            # Every documented answer of the ping endpoint; never a 5xx.
            assert status in (200, 201, 204, 400, 403, 404, 405, 409), fields
        result = sweep_due_checks(now=database_now())
        assert result.errors == []
        for check in Check.objects.filter(team=team):
            assert check.processed_n == check.n_pings, check.slug
            assert check.evaluation_failed_at is None
        assert not Ping.objects.filter(outcome="error").exists()

    pings_then_sweep()
    assert Ping.objects.filter(owner__team=team).exists()
