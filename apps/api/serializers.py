"""JSON shapes of the REST API (v1). Input serializers only check types and sizes; the rules
for a check's settings are the dashboard form's (see check_settings.py)."""

import re

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.badges.links import badge_url
from apps.checks.current import show_current
from apps.checks.models import Check, Flip, Ping, Run
from apps.incidents.models import Incident, IncidentEvent

from . import check_settings
from .visibility import shown_check_id

# Lone surrogates pass JSON parsing but cannot be encoded for the database.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def reject_surrogates(value: str) -> None:
    if _SURROGATES.search(value):
        raise serializers.ValidationError("Must be valid Unicode text.")


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of quietly turning them into text."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(reject_surrogates)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """Whole JSON numbers only: no "5" strings, no booleans, no 5.5."""

    default_error_messages = {"invalid": "Must be a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# Bounds that only keep hostile numbers away from the database; the form holds the real rules.
_SANE_INT = {"min_value": -(2**31), "max_value": 2**31 - 1}
_TAG = RegexValidator(r"^[^\s,]+\Z", "A tag has no spaces or commas.")


def _seconds(**kwargs):
    return StrictIntegerField(help_text="Seconds.", **_SANE_INT, **kwargs)


class CheckInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, allow_blank=True)  # the form says why blank is bad
    slug = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="For /ping/<ping key>/<slug>. Derived from the name when left out.",
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=50, validators=[_TAG]), max_length=50, required=False
    )
    description = StrictCharField(max_length=5000, allow_blank=True, required=False)
    environment = StrictCharField(max_length=50, allow_blank=True, required=False)
    schedule_kind = serializers.ChoiceField(Check.ScheduleKind.choices, required=False)
    period = _seconds(required=False)
    schedule_expression = StrictCharField(max_length=200, allow_blank=True, required=False)
    timezone = StrictCharField(max_length=64, required=False)
    grace = _seconds(required=False)
    max_runtime = _seconds(required=False, allow_null=True)
    progress_timeout = _seconds(required=False, allow_null=True)
    post_only = StrictBooleanField(required=False)
    success_keywords = StrictCharField(max_length=2000, allow_blank=True, required=False)
    failure_keywords = StrictCharField(max_length=2000, allow_blank=True, required=False)
    email_filter_subject = StrictBooleanField(required=False)
    email_filter_body = StrictBooleanField(required=False)
    email_success_keywords = StrictCharField(max_length=2000, allow_blank=True, required=False)
    email_failure_keywords = StrictCharField(max_length=2000, allow_blank=True, required=False)
    email_start_keywords = StrictCharField(max_length=2000, allow_blank=True, required=False)
    manual_resume = StrictBooleanField(required=False)
    failure_threshold = StrictIntegerField(required=False, **_SANE_INT)
    recovery_threshold = StrictIntegerField(required=False, **_SANE_INT)
    missed_tolerance = StrictIntegerField(required=False, **_SANE_INT)
    partial_max_failed = StrictIntegerField(required=False, allow_null=True, **_SANE_INT)
    partial_max_ratio = serializers.FloatField(required=False, allow_null=True)
    transient_exit_statuses = serializers.ListField(
        child=StrictIntegerField(**_SANE_INT), max_length=255, required=False
    )
    transient_limit = StrictIntegerField(required=False, **_SANE_INT)
    severity = serializers.ChoiceField(Check.Severity.choices, required=False)
    severity_raise_after = _seconds(required=False, allow_null=True)
    severity_raise_to = serializers.ChoiceField(Check.Severity.choices, required=False)
    flap_threshold = StrictIntegerField(required=False, **_SANE_INT)
    flap_window = _seconds(required=False)
    escalation_policy = StrictIntegerField(
        required=False, allow_null=True, help_text="A policy's id; null: the team's default."
    )
    depends_on = serializers.ListField(
        child=serializers.UUIDField(),
        max_length=50,
        required=False,
        help_text="Ids of the team's checks whose incidents hold this check's back.",
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object of check settings."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown[:20]})
        return super().to_internal_value(data)


class UpsertInputSerializer(CheckInputSerializer):
    """The slug comes from the URL."""

    slug = None


class CurrentCheckListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # One query for the pending pings of the whole page, not one per check.
        return super().to_representation(show_current(data))


class CheckSerializer(serializers.ModelSerializer):
    """A check as people should read it: its status includes pings the sweeper has not folded
    yet (apps/checks/current.py)."""

    id = serializers.SerializerMethodField(
        help_text="The UUID of the check's ping URL; for read-only keys its unique_key."
    )
    unique_key = serializers.CharField(
        read_only=True, help_text="A stable id that does not reveal the ping URL."
    )
    slug = serializers.CharField(
        read_only=True, help_text="Lower case; may be empty, and two checks may share one."
    )
    tags = serializers.ListField(child=serializers.CharField(), source="tag_list")
    ping_url = serializers.SerializerMethodField()
    slug_ping_url = serializers.SerializerMethodField()
    badge_url = serializers.SerializerMethodField(
        help_text="The check's status badge (SVG; .json instead of .svg: shields.io endpoint)."
    )
    period = serializers.SerializerMethodField()
    grace = serializers.SerializerMethodField()
    flap_window = serializers.SerializerMethodField()
    max_runtime = serializers.SerializerMethodField()
    progress_timeout = serializers.SerializerMethodField()
    severity_raise_after = serializers.SerializerMethodField()
    transient_exit_statuses = serializers.SerializerMethodField()
    depends_on = serializers.SerializerMethodField(
        help_text="The checks this one depends on (unique_keys for read-only keys)."
    )

    class Meta:
        model = Check
        list_serializer_class = CurrentCheckListSerializer
        fields = [
            "id",
            "unique_key",
            "name",
            "slug",
            "status",
            "tags",
            "description",
            "environment",
            "ping_url",
            "slug_ping_url",
            "badge_url",
            "last_ping_at",
            "n_pings",
            "created_at",
            "schedule_kind",
            "period",
            "schedule_expression",
            "timezone",
            "grace",
            "max_runtime",
            "progress_timeout",
            "post_only",
            "success_keywords",
            "failure_keywords",
            "email_filter_subject",
            "email_filter_body",
            "email_success_keywords",
            "email_failure_keywords",
            "email_start_keywords",
            "manual_resume",
            "failure_threshold",
            "recovery_threshold",
            "missed_tolerance",
            "partial_max_failed",
            "partial_max_ratio",
            "transient_exit_statuses",
            "transient_limit",
            "severity",
            "severity_raise_after",
            "severity_raise_to",
            "flap_threshold",
            "flap_window",
            "escalation_policy",
            "depends_on",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        show_current([instance])
        return super().to_representation(instance)

    def get_id(self, check) -> str:
        return shown_check_id(check.id, self.context.get("request"))

    def get_depends_on(self, check) -> list[str]:
        request = self.context.get("request")
        return [shown_check_id(pk, request) for pk in check.depends_on.values_list("pk", flat=True)]

    def _may_ping(self) -> bool:
        # A ping URL is a credential: whoever has it can report the job as fine. A read-only
        # key (a dashboard, a scraper) gets null, as Healthchecks omits them for such keys.
        request = self.context.get("request")
        return request is None or not getattr(request.user, "is_read_only", False)

    def get_ping_url(self, check) -> str | None:
        if not self._may_ping():
            return None
        return f"{settings.SITE_URL}/ping/{check.id}"

    def get_slug_ping_url(self, check) -> str | None:
        if not self._may_ping() or not check.slug:
            return None
        return f"{settings.SITE_URL}/ping/{check.team.ping_key}/{check.slug}"

    def get_badge_url(self, check) -> str:
        return badge_url(check)

    def get_period(self, check) -> int:
        return check_settings.seconds(check.period)

    def get_grace(self, check) -> int:
        return check_settings.seconds(check.grace)

    def get_flap_window(self, check) -> int:
        return check_settings.seconds(check.flap_window)

    def get_max_runtime(self, check) -> int | None:
        return check_settings.seconds(check.max_runtime)

    def get_progress_timeout(self, check) -> int | None:
        return check_settings.seconds(check.progress_timeout)

    def get_severity_raise_after(self, check) -> int | None:
        return check_settings.seconds(check.severity_raise_after)

    def get_transient_exit_statuses(self, check) -> list[int]:
        return check_settings.settings_of(check)["transient_exit_statuses"]


class CheckFilterSerializer(serializers.Serializer):
    tag = StrictCharField(max_length=50, required=False)
    status = serializers.ChoiceField(Check.Status.choices, required=False)
    environment = StrictCharField(max_length=50, required=False, allow_blank=True)


class PingSerializer(serializers.ModelSerializer):
    body = serializers.SerializerMethodField()

    class Meta:
        model = Ping
        fields = [
            "n",
            "kind",
            "received_at",
            "run_id",
            "exit_status",
            "method",
            "remote_addr",
            "user_agent",
            "body",
            "body_truncated",
            "attempt",
            "max_attempts",
            "processed",
            "failed_items",
            "done",
            "total",
            "sent_at",
            "ignored_input",
            "outcome",
        ]
        read_only_fields = fields

    def get_body(self, ping) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return ping.body_text


class RunSerializer(serializers.ModelSerializer):
    duration = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "run_id",
            "started_at",
            "ended_at",
            "duration",
            "outcome",
            "exit_status",
            "retries",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "number", "nullable": True, "description": "Seconds."})
    def get_duration(self, run):
        return None if run.duration is None else run.duration.total_seconds()


class FlipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Flip
        fields = ["happened_at", "from_status", "to_status", "reason"]
        read_only_fields = fields


class IncidentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentEvent
        fields = ["at", "kind", "detail"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    check_id = serializers.SerializerMethodField(
        help_text="The check's UUID; for read-only keys its unique_key."
    )
    check_name = serializers.CharField(source="owner.name")
    acknowledged_by = serializers.SerializerMethodField()
    resolved_by = serializers.SerializerMethodField()
    # "" while the incident is open: the schema's enum must say so.
    resolution = serializers.ChoiceField(
        choices=Incident.Resolution.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = Incident
        fields = [
            "id",
            "check_id",
            "check_name",
            "kind",
            "state",
            "severity",
            "opened_at",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "resolution",
            "details",
        ]
        read_only_fields = fields

    def get_check_id(self, incident) -> str:
        return shown_check_id(incident.owner_id, self.context.get("request"))

    def get_acknowledged_by(self, incident) -> str | None:
        return self._actor(incident, "acknowledged")

    def get_resolved_by(self, incident) -> str | None:
        return self._actor(incident, "resolved")

    @staticmethod
    def _actor(incident, event) -> str | None:
        user = getattr(incident, f"{event}_by")
        if user is not None:
            return user.get_username()
        # Actions by API keys have no user; the timeline names the key.
        for item in incident.events.all():
            if item.kind == event:
                return (item.detail or {}).get("by")
        return None


class IncidentDetailSerializer(IncidentSerializer):
    timeline = IncidentEventSerializer(source="events", many=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "timeline"]
        read_only_fields = fields


class IncidentFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(Incident.State.choices, required=False)
    check_id = serializers.UUIDField(required=False)
