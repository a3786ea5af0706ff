"""The OnCalendar reader of the check form (apps/dashboard/oncalendar_words.py): the common
forms in plain words, and no words at all for what it does not understand."""

import pytest

from apps.dashboard.oncalendar_words import describe_oncalendar

PREVIEW = "/checks/schedule-preview/"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("daily", "At 00:00"),
        ("Weekly", "At 00:00, only on Monday"),
        ("hourly", "Every hour, on the hour"),
        ("minutely", "Every minute"),
        ("monthly", "At 00:00, on day 1 of the month"),
        ("yearly", "At 00:00, on 1 January"),
        ("quarterly", "At 00:00, on day 1 of January, April, July and October"),
        ("Mon..Fri 03:00", "At 03:00, Monday through Friday"),
        ("  mon..fri   03:00:00 ", "At 03:00, Monday through Friday"),
        ("Sat,Sun 10:30", "At 10:30, only on Saturday and Sunday"),
        ("Mon,Wed,Fri *-*-* 06:00", "At 06:00, only on Monday, Wednesday and Friday"),
        ("Mon..Wed,Fri 06:00", "At 06:00, only on Monday through Wednesday and Friday"),
        ("*-*-* 08,12,16:00", "At 08:00, 12:00 and 16:00"),
        ("*:0/15", "Every 15 minutes"),
        ("*:*/10:00", "Every 10 minutes"),
        ("*:30", "Every hour at minute 30"),
        ("0/2:00", "Every 2 hours, on the hour"),
        (
            "Mon..Fri 9..17:00",
            "Every hour at minute 00, from 09:00 to 17:00, Monday through Friday",
        ),
        ("*-*-01,15 04:00", "At 04:00, on days 1 and 15 of the month"),
        ("12-25 07:00", "At 07:00, on 25 December"),
        ("*-06,12-* 01:00", "At 01:00, only in June and December"),
        ("03:00", "At 03:00"),
    ],
)
def test_common_forms_read_in_plain_words(expression, expected):
    assert describe_oncalendar(expression) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "2026-*-* 03:00",  # a fixed year
        "*:0/7:30",  # seconds other than 0
        "Mon..Fri 03:00 Europe/Riga",  # an inline zone: the form has its own
        "Funday 03:00",
        "*-13-01 00:00",
        "*-*-32 00:00",
        "25:00",
        "*:61",
        "0,1,2,3,4,5,6:00,30",  # more times than reads well
        "17..9:00",
        "1/2:30",
        "<script>alert(1)</script>",
        "a" * 5000,
        "Mon *-*-* 03:00 extra words",
        "*-*~01 00:00",
    ],
)
def test_other_forms_get_no_words(expression):
    assert describe_oncalendar(expression) == ""


def test_the_preview_reads_an_oncalendar_schedule_in_its_zone(owner_client):
    query = {
        "schedule_kind": "oncalendar",
        "schedule_expression": "Mon..Fri 03:00",
        "timezone": "Europe/Riga",
    }
    html = owner_client.get(PREVIEW, query).text
    assert (
        '<p class="schedule-reading" data-preview="reading">'
        "At 03:00, Monday through Friday (Europe/Riga time)</p>"
    ) in html
    assert 'data-preview="times"' in html
