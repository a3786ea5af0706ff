"""apps/bulk.py writes rows exactly as Django's own bulk_create and bulk_update would: the same
values read back, database keys set on the objects in their order, auto_now_add filled, and
conflicts skipped when asked. On PostgreSQL it is the unnest() path; on SQLite Django's own."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.bulk import insert_many, update_many
from apps.checks.models import Flip, Run
from apps.incidents.models import Incident, IncidentEvent
from apps.notifications.models import Channel
from tests.factories import CheckFactory

HOSTILE_TEXTS = [
    "plain",
    "",
    'quote " and \\ backslash',
    "{braces, commas}",
    "NULL",
    "ünïcødé ✓ 🚨",
    "line\nbreak\ttab",
]
LONG_TEXT = "x" * 5000


@pytest.fixture
def checks(team):
    return [CheckFactory(team=team, name=f"job {i}", slug=f"job-{i}") for i in range(3)]


def test_insert_many_sets_database_keys_in_order_and_reads_back_what_it_wrote(checks, t0):
    flips = [
        Flip(
            owner=checks[i % 3],
            from_status="up",
            to_status="down",
            happened_at=t0 + timedelta(seconds=i),
            reason=text,
        )
        for i, text in enumerate(HOSTILE_TEXTS)
    ]
    with CaptureQueriesContext(connection) as queries:
        insert_many(Flip, flips)
    if connection.vendor == "postgresql":
        assert len(queries.captured_queries) == 1  # one statement for the whole set
    assert all(flip.pk is not None for flip in flips)
    assert [flip.pk for flip in flips] == sorted(flip.pk for flip in flips)
    for flip in flips:
        stored = Flip.objects.get(pk=flip.pk)
        assert (stored.owner_id, stored.happened_at, stored.reason) == (
            flip.owner_id,
            flip.happened_at,
            flip.reason,
        )
        assert not flip._state.adding


def test_insert_many_writes_json_nulls_and_durations_as_django_does(checks, t0):
    incident = Incident.objects.create(
        owner=checks[0], kind="missed_heartbeat", opened_at=t0, details={}
    )
    details = [
        {"text": text, "nested": [1, None, True, {"k": text}]}
        for text in [*HOSTILE_TEXTS, LONG_TEXT]
    ] + [{}, []]
    events = [
        IncidentEvent(incident=incident, kind="note", at=t0, detail=detail) for detail in details
    ]
    insert_many(IncidentEvent, events)
    stored = IncidentEvent.objects.filter(incident=incident).order_by("id")
    assert [e.detail for e in stored] == details

    runs = [
        Run(owner=checks[1], started_at=t0, ended_at=t0 + timedelta(seconds=1.25)),
        Run(owner=checks[1], started_at=None, duration=timedelta(hours=5, microseconds=7)),
        Run(owner=checks[1], duration=None, start_n=3, end_n=4),
    ]
    insert_many(Run, runs)
    for run in runs:
        stored = Run.objects.get(pk=run.pk)
        assert (stored.started_at, stored.ended_at, stored.duration, stored.start_n) == (
            run.started_at,
            run.ended_at,
            run.duration,
            run.start_n,
        )


def test_insert_many_fills_auto_now_add(team):
    channels = [Channel(team=team, kind="webhook", name=f"hook {i}") for i in range(2)]
    insert_many(Channel, channels)
    for channel in channels:
        assert Channel.objects.get(pk=channel.pk).created_at is not None


def test_insert_many_skips_conflicting_rows_when_asked(checks, t0):
    incident = Incident.objects.create(
        owner=checks[0], kind="missed_heartbeat", opened_at=t0, details={}
    )
    first = Flip(owner=checks[0], from_status="up", to_status="down", happened_at=t0, reason="a")
    insert_many(Flip, [first])
    again = Flip(
        pk=first.pk, owner=checks[0], from_status="up", to_status="late", happened_at=t0, reason="b"
    )
    fresh = Flip(owner=checks[1], from_status="up", to_status="late", happened_at=t0, reason="c")
    insert_many(Flip, [again, fresh], ignore_conflicts=True)
    assert Flip.objects.get(pk=first.pk).reason == "a"  # the existing row is left alone
    assert Flip.objects.filter(reason="c").count() == 1
    assert incident.pk is not None


def test_insert_many_and_update_many_accept_an_empty_set():
    assert insert_many(Flip, []) == []
    update_many(Flip, [], ["reason"])


def test_update_many_writes_only_the_named_fields(checks, t0):
    flips = insert_many(
        Flip,
        [
            Flip(owner=c, from_status="up", to_status="late", happened_at=t0, reason="old")
            for c in checks
        ],
    )
    for i, flip in enumerate(flips):
        flip.reason = HOSTILE_TEXTS[i + 2]
        flip.to_status = "down"  # changed in memory, but not named: not written
    update_many(Flip, flips, ["reason"])
    for i, flip in enumerate(flips):
        stored = Flip.objects.get(pk=flip.pk)
        assert (stored.reason, stored.to_status) == (HOSTILE_TEXTS[i + 2], "late")
