"""Plain words for the common systemd OnCalendar expressions ("Mon..Fri 03:00" reads "At 03:00,
Monday through Friday"), beside the check form's preview of the next times. PyPI has no reader
of OnCalendar (cron-descriptor reads cron only), so this one covers what people write:

- the shorthands (daily, weekly, hourly, minutely, monthly, yearly, quarterly, semiannually);
- `[weekdays] [date] [time]`, weekdays as `Mon`, `Mon,Wed`, `Mon..Fri` (or a mix);
- a date with any year (`*`), any or listed months, any or listed days (`*-*-01`, `*-01-01`);
- a time with listed hours and minutes (`03:00`, `08,12:30`), every hour (`*:00`, `*:15`),
  every n minutes (`*:0/15`, `*:*/10`), every n hours on the hour (`0/2:00`), an hour range
  (`9..17:00`), and seconds of 0 only.

Anything else gets no words (""): the preview's next times still show what the expression
does, and the schedule's own validation says what is wrong. Pure: no Django, no clock."""

import re

SHORTHANDS = {
    "minutely": "*-*-* *:*:00",
    "hourly": "*-*-* *:00:00",
    "daily": "*-*-* 00:00:00",
    "weekly": "Mon *-*-* 00:00:00",
    "monthly": "*-*-01 00:00:00",
    "yearly": "*-01-01 00:00:00",
    "annually": "*-01-01 00:00:00",
    "quarterly": "*-01,04,07,10-01 00:00:00",
    "semiannually": "*-01,07-01 00:00:00",
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
MAX_TIMES = 6  # more listed times than this read worse than the preview's list
_NUMBER = re.compile(r"\d{1,2}")
_STEP = re.compile(r"(\*|0{1,2})/(\d{1,2})")


class Unreadable(ValueError):
    """The expression is beyond this reader (not necessarily invalid)."""


def describe_oncalendar(expression: str) -> str:
    """Plain words for `expression`, or "" when it is not one of the common forms above."""
    try:
        return _describe(expression)
    except Unreadable:
        return ""


def _describe(expression: str) -> str:
    text = " ".join(expression.split())
    text = SHORTHANDS.get(text.lower(), text)
    parts = text.split(" ")
    if not text or len(parts) > 3:
        raise Unreadable(expression)
    weekdays = parts.pop(0) if parts[0][:1].isalpha() else ""
    date = parts.pop(0) if parts and "-" in parts[0] and ":" not in parts[0] else "*-*-*"
    time = parts.pop(0) if parts and ":" in parts[0] else "00:00:00"
    if parts:
        raise Unreadable(expression)
    words = [_time_words(time)]
    if weekdays:
        words.append(_weekday_words(weekdays))
    date_words = _date_words(date)
    if date_words:
        words.append(date_words)
    return ", ".join(words)


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _numbers(field: str, low: int, high: int) -> list[int]:
    values = []
    for item in field.split(","):
        if not _NUMBER.fullmatch(item) or not low <= int(item) <= high:
            raise Unreadable(field)
        values.append(int(item))
    return sorted(set(values))


def _day(name: str) -> int:
    for i, day in enumerate(DAYS):
        if name.lower() in (day.lower(), day[:3].lower()):
            return i
    raise Unreadable(name)


def _weekday_words(field: str) -> str:
    pieces = []
    for item in field.split(","):
        if ".." in item:
            first, _, last = item.partition("..")
            pieces.append(f"{DAYS[_day(first)]} through {DAYS[_day(last)]}")
        else:
            pieces.append(DAYS[_day(item)])
    if len(pieces) == 1 and " through " in pieces[0]:
        return pieces[0]
    return "only on " + _listing(pieces)


def _date_words(field: str) -> str:
    parts = field.split("-")
    if len(parts) == 3:
        year, month, day = parts
        if year != "*":
            raise Unreadable(field)
    elif len(parts) == 2:
        month, day = parts
    else:
        raise Unreadable(field)
    months = None if month == "*" else _numbers(month, 1, 12)
    days = None if day == "*" else _numbers(day, 1, 31)
    if months is None and days is None:
        return ""
    if days is None:
        return "only in " + _listing([MONTHS[m - 1] for m in months])
    day_list = _listing([str(d) for d in days])
    if months is None:
        return (
            f"on day {day_list} of the month"
            if len(days) == 1
            else f"on days {day_list} of the month"
        )
    if len(months) == 1 and len(days) == 1:
        return f"on {days[0]} {MONTHS[months[0] - 1]}"
    noun = "day" if len(days) == 1 else "days"
    return f"on {noun} {day_list} of " + _listing([MONTHS[m - 1] for m in months])


def _time_words(field: str) -> str:
    parts = field.split(":")
    if len(parts) == 3:
        hour, minute, second = parts
        if second not in ("0", "00"):
            raise Unreadable(field)
    elif len(parts) == 2:
        hour, minute = parts
    else:
        raise Unreadable(field)
    if hour == "*":
        if minute == "*":
            return "Every minute"
        if step := _STEP.fullmatch(minute):
            return f"Every {int(step[2])} minutes"
        minutes = _numbers(minute, 0, 59)
        if minutes == [0]:
            return "Every hour, on the hour"
        return "Every hour at minute " + _listing([f"{m:02d}" for m in minutes])
    minutes = _numbers(minute, 0, 59)
    if step := _STEP.fullmatch(hour):
        if minutes != [0]:
            raise Unreadable(field)
        return f"Every {int(step[2])} hours, on the hour"
    if ".." in hour:
        first, _, last = hour.partition("..")
        low, high = _numbers(first, 0, 23)[0], _numbers(last, 0, 23)[0]
        if len(minutes) != 1 or low >= high:
            raise Unreadable(field)
        at = minutes[0]
        return f"Every hour at minute {at:02d}, from {low:02d}:{at:02d} to {high:02d}:{at:02d}"
    times = [f"{h:02d}:{m:02d}" for h in _numbers(hour, 0, 23) for m in minutes]
    if len(times) > MAX_TIMES:
        raise Unreadable(field)
    return "At " + _listing(times)
