import hashlib
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Q

from apps.bulk import bound_cursor
from apps.teams.models import Team

from . import schedule
from .rules import EX_TEMPFAIL, EmailRules, Rules, Severity
from .schedule import HostClock, Schedule, ScheduleKind, host_clock
from .state import EvalState, RunOutcome, Status, state_from_json
from .storable import decode_storable


def _raise_if_out_of_range(value, label, minimum=schedule.MIN_INTERVAL):
    message = schedule.interval_error(value, label, minimum)
    if message:
        raise ValidationError(message)


def validate_period(value):
    _raise_if_out_of_range(value, "Period")


def validate_grace(value):
    _raise_if_out_of_range(value, "Grace", schedule.MIN_THRESHOLD)


def validate_optional_interval(value):
    if value is not None:
        _raise_if_out_of_range(value, "This duration", schedule.MIN_THRESHOLD)


def parse_exit_statuses(text: str) -> frozenset[int]:
    """'75, 69' -> {75, 69}; raises ValueError with a message for the form."""
    values = set()
    for part in text.replace(",", " ").split():
        if not part.isdigit() or not 0 < int(part) <= 255:
            raise ValueError(f"“{part}” is not an exit status from 1 to 255.")
        values.add(int(part))
    return frozenset(values)


def validate_exit_statuses(text):
    try:
        parse_exit_statuses(text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def split_keywords(text: str) -> tuple[str, ...]:
    """One keyword (or phrase) per line or comma."""
    return tuple(k.strip() for k in text.replace(",", "\n").splitlines() if k.strip())


def unique_key_of(check_id) -> str:
    return hashlib.sha1(uuid.UUID(str(check_id)).hex.encode(), usedforsecurity=False).hexdigest()


# The sweeper only looks at checks whose status can still change on its own; paused and new
# checks have alert_after NULL, down checks too, so the partial index stays small.
SWEEPABLE = Q(alert_after__isnull=False)


class CheckQuerySet(models.QuerySet):
    def for_team_ids(self, team_ids):
        return self.filter(team_id__in=team_ids)

    def due(self, now):
        """Checks the sweeper must evaluate at `now` (served by the check_due partial index)."""
        return self.filter(SWEEPABLE, alert_after__lte=now)


def with_dependencies(check_ids) -> set:
    """The checks among `check_ids` that depend on another check or have dependents (and
    those others), in one query: whose incidents hold each other back in order."""
    edges = Check.depends_on.through
    check_ids = list(check_ids)
    if connection.vendor == "postgresql":
        # Asked for every batch a sweep writes, almost always of a few hundred ids and no
        # edge: two array parameters instead of the ORM's two IN lists of ids.
        with bound_cursor() as cursor:
            cursor.execute(
                f"SELECT to_check_id, from_check_id FROM {edges._meta.db_table} "
                "WHERE from_check_id = ANY(%b::uuid[]) OR to_check_id = ANY(%b::uuid[])",
                [check_ids, check_ids],
            )
            pairs = cursor.fetchall()
    else:
        found = edges.objects.filter(from_check_id__in=check_ids) | edges.objects.filter(
            to_check_id__in=check_ids
        )
        pairs = found.values_list("to_check_id", "from_check_id")
    linked = set()
    for parent, child in pairs:
        linked.update((parent, child))
    return linked


class Check(models.Model):
    Status = models.TextChoices("Status", [(s.name, s.value) for s in Status])

    # One identity, as in Healthchecks: the UUID in the ping URL (/ping/<id>) is also the
    # check's uuid in every API and its dashboard URL. Migration 0003 gave existing checks
    # their ping token as id, so ping URLs handed out before kept working.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Since the id is the ping URL, public things name the check by another key: badge URLs
    # (which are embedded in public pages) carry this one.
    badge_key = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="checks")
    # Names and slugs are free, as in Healthchecks: neither is unique, both may be empty. The
    # slug (lower case, derived from the name unless given) addresses /ping/<key>/<slug>; a slug
    # two checks share answers 409 there.
    name = models.CharField(max_length=100, blank=True)
    slug = models.SlugField(max_length=100, blank=True)
    tags = models.CharField(max_length=500, blank=True, help_text="Space-separated.")
    description = models.TextField(blank=True, max_length=5000)
    environment = models.CharField(max_length=50, blank=True)
    ScheduleKind = models.TextChoices("ScheduleKind", [(k.name, k.value) for k in ScheduleKind])
    Severity = models.TextChoices("Severity", [(s.name, s.value) for s in Severity])

    # Schedule: a period, or a cron / OnCalendar expression in a timezone.
    schedule_kind = models.CharField(
        max_length=12, choices=ScheduleKind.choices, default=ScheduleKind.PERIOD
    )
    period = models.DurationField(default=timedelta(days=1), validators=[validate_period])
    schedule_expression = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    grace = models.DurationField(default=timedelta(hours=1), validators=[validate_grace])
    # Runs.
    max_runtime = models.DurationField(
        null=True, blank=True, validators=[validate_optional_interval]
    )
    progress_timeout = models.DurationField(
        null=True, blank=True, validators=[validate_optional_interval]
    )
    # What counts as a ping.
    post_only = models.BooleanField(default=False)
    success_keywords = models.TextField(blank=True, max_length=2000)
    failure_keywords = models.TextField(blank=True, max_length=2000)
    manual_resume = models.BooleanField(default=False)
    # Email pings (apps/checks/email_pings.py): with neither filter on, every mail is a success;
    # with one on, the keywords found in the subject and/or body decide, and a mail matching
    # none is kept as a log entry that changes nothing (Healthchecks' "ignored").
    email_filter_subject = models.BooleanField(default=False)
    email_filter_body = models.BooleanField(default=False)
    email_success_keywords = models.TextField(blank=True, max_length=2000)
    email_failure_keywords = models.TextField(blank=True, max_length=2000)
    email_start_keywords = models.TextField(blank=True, max_length=2000)
    # When a failure becomes an alert.
    failure_threshold = models.PositiveSmallIntegerField(default=1)
    recovery_threshold = models.PositiveSmallIntegerField(default=1)
    missed_tolerance = models.PositiveSmallIntegerField(default=1)
    partial_max_failed = models.PositiveIntegerField(null=True, blank=True)
    partial_max_ratio = models.FloatField(null=True, blank=True)
    transient_exit_statuses = models.CharField(
        max_length=200, blank=True, default=str(EX_TEMPFAIL), validators=[validate_exit_statuses]
    )
    transient_limit = models.PositiveSmallIntegerField(default=3)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    severity_raise_after = models.DurationField(
        null=True, blank=True, validators=[validate_optional_interval]
    )
    severity_raise_to = models.CharField(
        max_length=10, choices=Severity.choices, default=Severity.CRITICAL
    )
    flap_threshold = models.PositiveSmallIntegerField(default=0)
    flap_window = models.DurationField(default=timedelta(hours=1))
    skew_warning = models.DurationField(default=timedelta(seconds=60))
    # Who hears about this check's incidents; NULL: the team's default policy (or, without one,
    # every team member by email).
    escalation_policy = models.ForeignKey(
        "escalation.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="checks",
    )
    # While one of these has an open incident, this check's incidents are opened but held back
    # ("caused by db-health"); see apps/escalation/engine.py.
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    # Written by the ping path: when any ping last arrived (shown in lists).
    last_ping_at = models.DateTimeField(null=True, blank=True)
    # Next moment the sweeper must evaluate this check; NULL when nothing can change by itself.
    # The ping path sets it to now, so that the sweeper folds the new ping in.
    alert_after = models.DateTimeField(null=True, blank=True)
    # Counts every ping; each Ping row stores its number so that pruning is one DELETE.
    n_pings = models.PositiveIntegerField(default=0)
    # The sweeper's bookkeeping: pings up to this number are folded into eval_state.
    processed_n = models.PositiveIntegerField(default=0)
    eval_state = models.JSONField(default=dict, blank=True)
    # The last time folding this check's pings raised (a bug, or a row the rules cannot read):
    # the ping that caused it is skipped with the outcome "error", the check page shows this,
    # /healthz reports it and the team's owners and admins are emailed (see sweeper.py).
    evaluation_failed_at = models.DateTimeField(null=True, blank=True)
    evaluation_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["alert_after"], condition=SWEEPABLE, name="check_due"),
            models.Index(fields=["team", "slug"], name="check_team_slug"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def unique_key(self) -> str:
        """A stable id that does not reveal the ping URL, for read-only API keys (Healthchecks'
        `unique_key`: the SHA-1 of the UUID)."""
        return unique_key_of(self.id)

    @property
    def ping_token(self) -> uuid.UUID:
        """The UUID of the ping URL, which is the check's id (kept as a name for readers)."""
        return self.id

    @property
    def tag_list(self) -> list[str]:
        return self.tags.split()

    @property
    def schedule(self) -> Schedule:
        return Schedule(
            kind=ScheduleKind(self.schedule_kind),
            period=self.period,
            expression=self.schedule_expression,
            timezone=self.timezone,
        )

    def rules(self) -> Rules:
        return Rules(
            schedule=self.schedule,
            grace=self.grace,
            max_runtime=self.max_runtime,
            progress_timeout=self.progress_timeout,
            post_only=self.post_only,
            success_keywords=split_keywords(self.success_keywords),
            failure_keywords=split_keywords(self.failure_keywords),
            manual_resume=self.manual_resume,
            failure_threshold=max(1, self.failure_threshold),
            recovery_threshold=max(1, self.recovery_threshold),
            missed_tolerance=max(1, self.missed_tolerance),
            partial_max_failed=self.partial_max_failed,
            partial_max_ratio=self.partial_max_ratio,
            transient_exit_statuses=parse_exit_statuses(self.transient_exit_statuses),
            transient_limit=self.transient_limit,
            severity=Severity(self.severity),
            severity_raise_after=self.severity_raise_after,
            severity_raise_to=Severity(self.severity_raise_to),
            flap_threshold=self.flap_threshold,
            flap_window=self.flap_window,
            skew_warning=self.skew_warning,
        )

    def email_rules(self) -> EmailRules:
        return EmailRules(
            filter_subject=self.email_filter_subject,
            filter_body=self.email_filter_body,
            success_keywords=split_keywords(self.email_success_keywords),
            failure_keywords=split_keywords(self.email_failure_keywords),
            start_keywords=split_keywords(self.email_start_keywords),
        )

    def state(self) -> EvalState:
        return state_from_json(self.status, self.eval_state)

    @property
    def clock_offset_seconds(self) -> float:
        return float((self.eval_state or {}).get("clock_offset", 0.0))

    @property
    def host_clock(self) -> HostClock:
        """The job host's clock as the schedule rules see it: smoothed and capped."""
        return host_clock(self.state().recent_offsets)

    @property
    def has_clock_warning(self) -> bool:
        clock = self.host_clock
        return clock.is_capped or abs(clock.offset) > self.skew_warning

    @property
    def clock_note(self) -> str:
        """What a host clock that is off means for this check ("" when it is not off)."""
        if not self.has_clock_warning:
            return ""
        return schedule.describe_host_clock(self.host_clock, ScheduleKind(self.schedule_kind))

    @property
    def open_runs(self) -> list[dict]:
        return (self.eval_state or {}).get("open_runs", [])


class Ping(models.Model):
    class Kind(models.TextChoices):
        SUCCESS = "success"
        FAIL = "fail"
        START = "start"
        LOG = "log"
        PROGRESS = "progress"

    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="pings", db_column="check_id"
    )
    n = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    received_at = models.DateTimeField()
    run_id = models.UUIDField(null=True, blank=True)
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(max_length=10)
    remote_addr = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    # Raw bytes: a job's output is not always UTF-8 and we must not lose it by decoding.
    body = models.BinaryField(default=b"")
    body_truncated = models.BooleanField(default=False)
    # Optional facts the job reports in the query string (or header, for sent_at).
    attempt = models.PositiveIntegerField(null=True, blank=True)
    max_attempts = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveBigIntegerField(null=True, blank=True)
    failed_items = models.PositiveBigIntegerField(null=True, blank=True)
    done = models.PositiveBigIntegerField(null=True, blank=True)
    total = models.PositiveBigIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Malformed optional values the ping carried (e.g. "ignored ts=abc (...)"): the ping was
    # recorded without them rather than refused, and the check page shows this line.
    ignored_input = models.CharField(max_length=200, blank=True, default="")
    # Written by the sweeper when it folds the ping in: what the ping meant (rules.Outcome).
    outcome = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-n"]
        indexes = [models.Index(fields=["owner", "n"], name="ping_check_n")]

    def __str__(self) -> str:
        return f"{self.kind} ping #{self.n} of {self.owner_id}"

    @property
    def body_text(self) -> str:
        # Goes into incident details (jsonb), emails and pages: never a NUL (issue 14).
        return decode_storable(bytes(self.body))

    def body_tail(self, lines: int = 20, max_chars: int = 2000) -> str:
        tail = "\n".join(self.body_text.rstrip().splitlines()[-lines:])
        return tail[-max_chars:]


class Flip(models.Model):
    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="flips", db_column="check_id"
    )
    from_status = models.CharField(max_length=10, choices=Check.Status.choices)
    to_status = models.CharField(max_length=10, choices=Check.Status.choices)
    happened_at = models.DateTimeField()
    reason = models.CharField(max_length=40)

    class Meta:
        ordering = ["-happened_at", "-id"]
        indexes = [models.Index(fields=["owner", "-happened_at"], name="flip_check_time")]

    def __str__(self) -> str:
        return f"{self.owner_id}: {self.from_status} -> {self.to_status}"


class SweepRun(models.Model):
    """One sweep, for monitoring the monitor (/healthz, the dashboard banner)."""

    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.PositiveIntegerField()
    examined = models.PositiveIntegerField()
    changed = models.PositiveIntegerField()
    # Pings folded in by this sweep: every ping makes its check due, so this is the ingest
    # rate, which reveals an ingest outage (see monitor.py).
    pings_folded = models.PositiveIntegerField(default=0)
    blind_since = models.DateTimeField(null=True, blank=True)
    blind_cause = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sweep at {self.started_at}: {self.examined} examined, {self.changed} changed"


class Run(models.Model):
    """One execution of a job: from its start ping (if any) to its finish, hang or stall."""

    Outcome = models.TextChoices("Outcome", [(o.name, o.value) for o in RunOutcome])

    owner = models.ForeignKey(
        Check, on_delete=models.CASCADE, related_name="runs", db_column="check_id"
    )
    run_id = models.UUIDField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)  # None: finish without a start
    ended_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RUNNING)
    start_n = models.PositiveIntegerField(null=True, blank=True)
    end_n = models.PositiveIntegerField(null=True, blank=True)
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    retries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["owner", "-id"], name="run_check_recent")]

    def __str__(self) -> str:
        return f"run of {self.owner_id}: {self.outcome}"


# A team that has not chosen its own limit: generous for real use, yet a runaway loop of
# pings with ever-new slugs stops here instead of filling the database.
DEFAULT_MAX_CHECKS = 500


class CheckDefaults(models.Model):
    """What a check created by auto-provisioning (a ping to /ping/<ping key>/<slug>?create=1
    for an unknown slug) starts with, and how many checks the team may reach that way. A team
    without a row uses the field defaults, which match a new Check's. Notifications go through
    the escalation policy (a check has no channels of its own)."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="check_defaults"
    )
    schedule_kind = models.CharField(
        max_length=12,
        choices=[(k.value, k.value) for k in ScheduleKind],
        default=ScheduleKind.PERIOD.value,
    )
    period = models.DurationField(default=timedelta(days=1))
    schedule_expression = models.CharField(max_length=200, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    grace = models.DurationField(default=timedelta(hours=1))
    tags = models.CharField(max_length=500, blank=True, help_text="Space-separated.")
    escalation_policy = models.ForeignKey(
        "escalation.EscalationPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Auto-provisioning creates no check once the team has this many (however they were
    # made); 0 turns auto-provisioning off.
    max_checks = models.PositiveIntegerField(default=DEFAULT_MAX_CHECKS)
    # A refused ping cannot be stored (a Ping needs its check), so it is counted here and the
    # page shows the last one: the team sees what it missed instead of nothing.
    refused_pings = models.PositiveIntegerField(default=0)
    last_refused_slug = models.CharField(max_length=100, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Created by the teams app before checks owned it; the table kept its name.
        db_table = "teams_checkdefaults"
        verbose_name_plural = "check defaults"

    def __str__(self) -> str:
        return f"check defaults of {self.team_id}"

    def check_settings(self) -> dict:
        """The Check fields a provisioned check takes from these defaults."""
        return {
            "schedule_kind": self.schedule_kind,
            "period": self.period,
            "schedule_expression": self.schedule_expression,
            "timezone": self.timezone,
            "grace": self.grace,
            "tags": self.tags,
            "escalation_policy_id": self.escalation_policy_id,
        }
