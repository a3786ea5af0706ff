"""Human words for every code the pages show, in one place: flip reasons, ping kinds, schedule
kinds, run outcomes and incident events. Codes unknown here (a newer version's) are shown
capitalised with spaces, never raw with underscores."""

from apps.checks.schedule import SCHEDULE_KIND_LABELS, ScheduleKind
from apps.checks.state import Reason

REASONS = {
    Reason.FIRST_PING: "First ping",
    Reason.SUCCESS: "Success ping",
    Reason.RECOVERED: "Recovered",
    Reason.RESUMED: "Resumed",
    Reason.PAUSED: "Paused",
    Reason.CHECKED_IN: "Checked in, not yet a success",
    Reason.MISSED_DEADLINE: "Missed its deadline",
    Reason.MISSED_HEARTBEAT: "Missed heartbeat",
    Reason.FAILURE_SIGNAL: "Failure signal",
    Reason.HUNG: "Hung run",
    Reason.STALLED: "Stalled run",
    Reason.PARTIAL_OVER_LIMIT: "Partial success over the limit",
    Reason.TOCSIN_BLIND: "Tocsin could not see pings",
}

PING_KINDS = {
    "success": "Success",
    "fail": "Failure",
    "start": "Start",
    "log": "Log",
    "progress": "Progress",
}

SCHEDULE_KINDS = SCHEDULE_KIND_LABELS


def humanise_code(code: str) -> str:
    """ "partial_over_limit" -> "Partial over limit": the fallback for a code without a label."""
    words = str(code).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def label_for(table: dict, code) -> str:
    if code in (None, ""):
        return ""
    return table.get(code) or humanise_code(code)


def reason_label(code) -> str:
    return label_for(REASONS, code)


def ping_kind_label(code) -> str:
    return label_for(PING_KINDS, code)


def schedule_kind_label(code) -> str:
    return label_for(SCHEDULE_KINDS, code)


SCHEDULE_KIND_CHOICES = [(kind.value, SCHEDULE_KINDS[kind]) for kind in ScheduleKind]
