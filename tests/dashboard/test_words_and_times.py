"""Pure helpers of the pages: times in the reader's zone ("2 Dec 2026, 09:00 EET", "just now"),
human labels for codes, and the crontab line built from a check's schedule. No database."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.checks.schedule import ScheduleKind
from apps.checks.state import Reason
from apps.dashboard.labels import (
    REASONS,
    humanise_code,
    ping_kind_label,
    reason_label,
    schedule_kind_label,
)
from apps.dashboard.snippets import crontab_schedule
from apps.teams.display_time import zone_or_none
from apps.teams.templatetags.times import ago_text, when, when_tag

MOMENT = datetime(2026, 12, 2, 7, 0, 41, 437245, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "precision", "expected"),
    [
        ("UTC", "", "2 Dec 2026, 07:00 UTC"),
        ("UTC", "seconds", "2 Dec 2026, 07:00:41 UTC"),
        ("Europe/Riga", "", "2 Dec 2026, 09:00 EET"),
        ("America/New_York", "", "2 Dec 2026, 02:00 EST"),
        # An abbreviation that is only an offset says less than the zone's name.
        ("Asia/Dubai", "", "2 Dec 2026, 11:00 Asia/Dubai"),
    ],
    ids=["utc", "utc-seconds", "riga", "new-york", "offset-only-abbreviation"],
)
def test_when_is_in_the_active_zone_and_names_it(zone, precision, expected):
    with timezone.override(ZoneInfo(zone)):
        assert when(MOMENT, precision) == expected
        # The ISO strings kept in JSON (incident details) read the same.
        assert when(MOMENT.isoformat(), precision) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ""), ("", ""), ("not a time", "not a time"), (42, "42")],
    ids=["none", "empty", "garbage-string", "number"],
)
def test_when_shows_what_is_not_a_time_as_it_is(value, expected):
    assert when(value) == expected


def test_when_tag_carries_the_exact_instant_and_escapes_garbage():
    with timezone.override(ZoneInfo("Europe/Riga")):
        tag = when_tag(MOMENT)
    assert tag == '<time datetime="2026-12-02T07:00:41.437245+00:00">2 Dec 2026, 09:00 EET</time>'
    assert when_tag("<script>") == "<script>"  # as text: the template escapes it


@pytest.mark.parametrize(
    ("seconds_ago", "expected"),
    [
        (-30, "just now"),  # a ping stamped by a clock slightly ahead
        (0, "just now"),
        (59, "just now"),
        (60, "1 minute ago"),
        (150, "2 minutes ago"),
        (3600, "1 hour ago"),
        (3 * 3600 + 59, "3 hours ago"),
        (86400, "1 day ago"),
        (40 * 86400, "40 days ago"),
    ],
)
def test_ago_never_says_zero_minutes_and_gets_plurals_right(seconds_ago, expected):
    assert ago_text(MOMENT - timedelta(seconds=seconds_ago), MOMENT) == expected


@pytest.mark.parametrize(
    "name",
    ["", "Not/AZone", "../../etc/passwd", "Europe/Riga" + "x" * 100, "europe/riga"],
    ids=["blank", "unknown", "path", "oversized", "wrong-case"],
)
def test_unusable_zone_names_are_refused_without_raising(name):
    assert zone_or_none(name) is None


def test_every_flip_reason_has_a_label_without_underscores():
    for reason in Reason:
        assert reason in REASONS
        assert "_" not in reason_label(reason)
    assert reason_label("failure_signal") == "Failure signal"
    assert reason_label("missed_deadline") == "Missed its deadline"
    assert reason_label("first_ping") == "First ping"
    # A code from a newer version still reads as words.
    assert reason_label("some_new_code") == "Some new code"
    assert humanise_code("partial_over_limit") == "Partial over limit"
    assert reason_label(None) == ""


def test_ping_and_schedule_kind_labels():
    assert ping_kind_label("fail") == "Failure"
    assert ping_kind_label("success") == "Success"
    assert schedule_kind_label("oncalendar") == "OnCalendar"
    assert schedule_kind_label(ScheduleKind.CRON) == "Cron"


@pytest.mark.parametrize(
    ("kind", "period", "expression", "expected"),
    [
        ("cron", None, "0 3 * * 1-5", "0 3 * * 1-5"),
        ("cron", None, "  */15   9-17 * * *  ", "*/15 9-17 * * *"),
        ("cron", None, "@daily", "@daily"),
        ("period", timedelta(minutes=1), "", "* * * * *"),
        ("period", timedelta(minutes=15), "", "*/15 * * * *"),
        ("period", timedelta(minutes=7), "", ""),
        ("period", timedelta(hours=1), "", "0 * * * *"),
        ("period", timedelta(hours=6), "", "0 */6 * * *"),
        ("period", timedelta(hours=5), "", ""),
        ("period", timedelta(hours=1, minutes=30), "", ""),
        ("period", timedelta(days=1), "", "0 3 * * *"),
        ("period", timedelta(days=7), "", "0 3 * * 1"),
        ("period", timedelta(days=3), "", ""),
        ("period", timedelta(seconds=90), "", ""),
        ("period", timedelta(0), "", ""),
        ("oncalendar", None, "Mon..Fri 03:00", ""),
    ],
)
def test_crontab_line_follows_the_schedule(kind, period, expression, expected):
    period = timedelta(days=1) if period is None else period
    assert crontab_schedule(kind, period, expression) == expected
