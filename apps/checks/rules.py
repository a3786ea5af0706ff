"""Per-check evaluation settings and the classification of a single ping. Pure: no ORM.

`classify` answers "what does this ping mean for this check?" before the state machine
folds it in: a GET on a POST-only check is ignored, a failure with attempt < max_attempts is a
retry, an exit status listed as transient is a transient failure, a finishing ping that reports
processed/failed counts is a success, a partial success or a failure depending on the limits,
and keywords found in a body can turn a ping into a success or a failure.

Email pings are judged once, when the mail arrives (`classify_email`, with the check's own
email keywords on subject and body); the sweeper then takes their kind as given: the HTTP
body keywords and "only POST counts" are about HTTP requests.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from .schedule import Schedule

EX_TEMPFAIL = 75
KEYWORD_SCAN_LIMIT = 100 * 1024


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return [Severity.INFO, Severity.WARNING, Severity.CRITICAL].index(self)


class PingKind(StrEnum):
    SUCCESS = "success"
    FAIL = "fail"
    START = "start"
    LOG = "log"
    PROGRESS = "progress"


class Outcome(StrEnum):
    """What a ping means once classified."""

    SUCCESS = "success"
    PARTIAL = "partial"  # finished with some failed items, below the limit: counted, no alert
    FAIL = "fail"
    PARTIAL_OVER_LIMIT = "partial_over_limit"  # too many failed items: a failure
    TRANSIENT = "transient"  # an exit status listed as transient (EX_TEMPFAIL by default)
    RETRYING = "retrying"  # a failed attempt with more attempts to come: never alerts
    START = "start"
    PROGRESS = "progress"
    LOG = "log"
    IGNORED = "ignored"  # e.g. GET/HEAD on a POST-only check, or no keyword matched

    @property
    def finishes_run(self) -> bool:
        return self in FINISHING

    @property
    def is_failure(self) -> bool:
        return self in (Outcome.FAIL, Outcome.PARTIAL_OVER_LIMIT)


FINISHING = frozenset(
    {
        Outcome.SUCCESS,
        Outcome.PARTIAL,
        Outcome.FAIL,
        Outcome.PARTIAL_OVER_LIMIT,
        Outcome.TRANSIENT,
        Outcome.RETRYING,
    }
)


@dataclass(frozen=True)
class Rules:
    """Everything that decides how a check is judged; each has a sensible default."""

    schedule: Schedule = field(default_factory=Schedule)
    grace: timedelta = timedelta(hours=1)
    max_runtime: timedelta | None = None
    progress_timeout: timedelta | None = None
    post_only: bool = False
    success_keywords: tuple[str, ...] = ()
    failure_keywords: tuple[str, ...] = ()
    manual_resume: bool = False
    failure_threshold: int = 1
    recovery_threshold: int = 1
    missed_tolerance: int = 1
    partial_max_failed: int | None = None
    partial_max_ratio: float | None = None
    transient_exit_statuses: frozenset[int] = frozenset({EX_TEMPFAIL})
    transient_limit: int = 3
    severity: Severity = Severity.WARNING
    severity_raise_after: timedelta | None = None
    severity_raise_to: Severity = Severity.CRITICAL
    flap_threshold: int = 0  # 0: flapping detection off
    flap_window: timedelta = timedelta(hours=1)
    skew_warning: timedelta = timedelta(seconds=60)


EMAIL_METHOD = "EMAIL"  # Ping.method of a ping that came by email


@dataclass(frozen=True)
class EmailRules:
    """How a check reads the mails sent to its address (Healthchecks' filter_subject,
    filter_body, success_kw, failure_kw, start_kw)."""

    filter_subject: bool = False
    filter_body: bool = False
    success_keywords: tuple[str, ...] = ()
    failure_keywords: tuple[str, ...] = ()
    start_keywords: tuple[str, ...] = ()


def classify_email(subject: str, body: str, rules: EmailRules) -> PingKind:
    """What a mail means: with no filter on, a success. With a filter on, the scanned text
    (subject, body or both) is searched for failure, then success, then start keywords, case
    insensitively; a mail matching none is a log entry, which changes no status."""
    if not (rules.filter_subject or rules.filter_body):
        return PingKind.SUCCESS
    scanned = "\n".join(
        text
        for text, enabled in ((subject, rules.filter_subject), (body, rules.filter_body))
        if enabled
    )
    for keywords, kind in (
        (rules.failure_keywords, PingKind.FAIL),
        (rules.success_keywords, PingKind.SUCCESS),
        (rules.start_keywords, PingKind.START),
    ):
        if _matches(scanned, keywords):
            return kind
    return PingKind.LOG


@dataclass(frozen=True)
class PingEvent:
    """A recorded ping, as the rules see it."""

    n: int
    kind: PingKind
    received_at: datetime
    method: str = "POST"
    run_id: str | None = None
    exit_status: int | None = None
    body: str = ""
    attempt: int | None = None
    max_attempts: int | None = None
    processed: int | None = None
    failed: int | None = None
    done: int | None = None
    total: int | None = None
    sent_at: datetime | None = None


def item_counts(ping: PingEvent) -> tuple[int | None, int | None]:
    """processed/failed from the query string, else from a small JSON body."""
    if ping.processed is not None or ping.failed is not None:
        return ping.processed, ping.failed
    text = ping.body.strip()
    if not text.startswith("{") or len(text) > 4096:
        return None, None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # deep nesting fits in 4 KB
        return None, None
    if not isinstance(data, dict):
        return None, None

    def count(key):
        value = data.get(key)
        return (
            value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
        )

    return count("processed"), count("failed")


def _matches(body: str, keywords: tuple[str, ...]) -> bool:
    scanned = body[:KEYWORD_SCAN_LIMIT].lower()
    return any(keyword.lower() in scanned for keyword in keywords if keyword)


def classify(ping: PingEvent, rules: Rules) -> Outcome:
    by_email = ping.method == EMAIL_METHOD  # already judged by classify_email
    if rules.post_only and ping.method != "POST" and not by_email:
        return Outcome.IGNORED
    kind = ping.kind
    if (
        not by_email
        and kind in (PingKind.SUCCESS, PingKind.LOG)
        and (rules.success_keywords or rules.failure_keywords)
    ):
        if _matches(ping.body, rules.failure_keywords):
            kind = PingKind.FAIL
        elif _matches(ping.body, rules.success_keywords):
            kind = PingKind.SUCCESS
        elif kind == PingKind.SUCCESS and rules.success_keywords:
            # The job only sends its output; without a success keyword it proves nothing.
            return Outcome.IGNORED
    if kind == PingKind.START:
        return Outcome.START
    if kind == PingKind.PROGRESS:
        return Outcome.PROGRESS
    if kind == PingKind.LOG:
        return Outcome.LOG
    if kind == PingKind.FAIL:
        more_attempts = ping.attempt is not None and ping.max_attempts is not None
        if more_attempts and ping.attempt < ping.max_attempts:
            return Outcome.RETRYING
        if ping.exit_status is not None and ping.exit_status in rules.transient_exit_statuses:
            return Outcome.TRANSIENT
        return Outcome.FAIL
    processed, failed = item_counts(ping)
    if failed:
        if rules.partial_max_failed is not None and failed > rules.partial_max_failed:
            return Outcome.PARTIAL_OVER_LIMIT
        ratio_limit = rules.partial_max_ratio
        # Failures among zero processed items are over any ratio (not a division by zero).
        if (
            ratio_limit is not None
            and processed is not None
            and (processed == 0 or failed / processed > ratio_limit)
        ):
            return Outcome.PARTIAL_OVER_LIMIT
        return Outcome.PARTIAL
    return Outcome.SUCCESS
