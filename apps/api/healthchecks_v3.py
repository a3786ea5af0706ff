"""The Healthchecks Management API over Tocsin's checks, in its three versions: /api/v1/,
/api/v2/ and /api/v3/ (each view is mounted once per version, with `api_version`).

Same paths, methods, field names and status codes as Healthchecks documents them, as far as
Tocsin's model allows; README.md ("Healthchecks compatibility") lists what maps and what does
not. The versions differ as Healthchecks' do: v1 reports a running check's status as
"started" (v2 and v3 have the `started` field for it), v1 and v2 derive the slug from the
name on every write that sets a name (v3 takes `slug` as given), and every URL in an answer
points into the version asked. A check's `uuid` is its id, which is also the UUID of its ping
URL (one identity). Writes go through the same settings translation and dashboard form as
Tocsin's own API (/api/tocsin/v1/). Status and timing read as current: pings answered but not
yet folded by the sweeper are folded on read (apps/checks/current.py).
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Length
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.badges.links import badge_url
from apps.checks.current import show_current
from apps.checks.models import Check
from apps.checks.schedule import NEVER, ScheduleKind
from apps.checks.services import pause_check, resume_check
from apps.clock import database_now
from apps.notifications.models import Channel

from .authentication import HealthchecksBodyKeyAuthentication
from .check_settings import SettingsInvalid, save_check_settings
from .checks import tag_filter
from .errors import Conflict
from .healthchecks_common import HealthchecksApiMixin, HealthchecksError
from .healthchecks_v3_project import V3BadgeList, v3_status  # noqa: F401 (for urls.py)
from .parsers import AnyContentTypeJSONParser, LimitedJSONParser
from .permissions import HasReadWriteTeamKey
from .serializers import StrictBooleanField, StrictCharField, StrictIntegerField

# Healthchecks has no "late" or "unknown": late is its "grace"; unknown (Tocsin could not see,
# so it has no verdict yet) is closest to its "new".
STATUS_NAMES = {"late": "grace", "unknown": "new"}
PING_TYPES = {"progress": "log"}
V3_STATUSES = ["new", "up", "grace", "down", "paused"]
API_VERSIONS = (1, 2, 3)
UNIQUE_FIELDS = ("name", "slug", "tags", "timeout", "grace")


def unique_key(check: Check) -> str:
    """The stable id Healthchecks gives read-only keys instead of the UUID (which is a secret:
    it is also the check's ping URL)."""
    return check.unique_key


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def next_ping_at(check: Check) -> datetime | None:
    last = check.state().last_checkin_at
    if last is None or check.status == Check.Status.PAUSED:
        return None
    expected = check.schedule.next_after(last)
    return None if expected >= NEVER else expected


class V3CheckSerializer(serializers.Serializer):
    """A check as Healthchecks shows it. uuid and the action URLs only for read-write keys."""

    name = serializers.CharField()
    slug = serializers.CharField()
    tags = serializers.CharField(help_text="Space-separated.")
    desc = serializers.CharField()
    grace = serializers.IntegerField(help_text="Seconds.")
    n_pings = serializers.IntegerField()
    # As v3 answers (the schema documents v3); v1 also answers "started".
    status = serializers.ChoiceField(V3_STATUSES)
    started = serializers.BooleanField()
    last_ping = serializers.DateTimeField(allow_null=True)
    next_ping = serializers.DateTimeField(allow_null=True)
    manual_resume = serializers.BooleanField()
    methods = serializers.CharField()
    subject = serializers.CharField()
    subject_fail = serializers.CharField()
    start_kw = serializers.CharField()
    success_kw = serializers.CharField()
    failure_kw = serializers.CharField()
    filter_subject = serializers.BooleanField()
    filter_body = serializers.BooleanField()
    filter_http_body = serializers.BooleanField()
    filter_default_fail = serializers.BooleanField()
    last_duration = serializers.IntegerField(required=False)
    timeout = serializers.IntegerField(required=False, help_text="Seconds; simple checks only.")
    schedule = serializers.CharField(required=False, help_text="Cron or OnCalendar checks only.")
    tz = serializers.CharField(required=False)
    uuid = serializers.UUIDField(required=False)
    ping_url = serializers.URLField(required=False)
    update_url = serializers.URLField(required=False)
    pause_url = serializers.URLField(required=False)
    resume_url = serializers.URLField(required=False)
    channels = serializers.CharField(required=False)
    unique_key = serializers.CharField(required=False)
    badge_url = serializers.URLField(help_text="The check's SVG status badge.")


class V3CheckListSerializer(serializers.Serializer):
    checks = V3CheckSerializer(many=True)


def check_as_v3(check: Check, *, read_only: bool, version: int = 3) -> dict:
    """The check as Healthchecks' API `version` shows it; call show_current() on the check
    first (the views do) so that its status includes pings not yet folded."""
    status = STATUS_NAMES.get(check.status, check.status)
    started = bool(check.open_runs)
    if version == 1 and started and status != "paused":
        status = "started"  # v1 has no `started` field of its own
    has_keywords = bool(check.success_keywords or check.failure_keywords)
    data = {
        "name": check.name,
        "slug": check.slug,
        "tags": check.tags,
        "desc": check.description,
        "grace": int(check.grace.total_seconds()),
        "n_pings": check.n_pings,
        "status": status,
        "started": started,
        "last_ping": _iso(check.last_ping_at),
        "next_ping": _iso(next_ping_at(check)),
        "manual_resume": check.manual_resume,
        "methods": "POST" if check.post_only else "",
        "subject": "",
        "subject_fail": "",
        "start_kw": "",
        "success_kw": ",".join(check.success_keywords.splitlines()),
        "failure_kw": ",".join(check.failure_keywords.splitlines()),
        "filter_subject": False,
        "filter_body": has_keywords,
        # These keywords are matched in HTTP ping bodies; email pings have settings of their
        # own (Check.email_*), which this API does not map.
        "filter_http_body": has_keywords,
        "filter_default_fail": False,
        # Public by design (a badge shows only a name and a status), so for every key.
        "badge_url": badge_url(check),
    }
    last_run = check.runs.filter(duration__isnull=False).order_by("-id").first()
    if last_run is not None:
        data["last_duration"] = int(last_run.duration.total_seconds())
    if check.schedule_kind == ScheduleKind.PERIOD:
        data["timeout"] = int(check.period.total_seconds())
    else:
        data["schedule"] = check.schedule_expression
        data["tz"] = check.timezone
    if read_only:
        data["unique_key"] = unique_key(check)
        return data
    api = api_url(version, f"checks/{check.id}")
    data.update(
        uuid=str(check.id),
        ping_url=f"{settings.SITE_URL}/ping/{check.id}",
        update_url=api,
        pause_url=f"{api}/pause",
        resume_url=f"{api}/resume",
        channels="",
    )
    return data


def api_url(version: int, path: str) -> str:
    return f"{settings.SITE_URL}/api/v{version}/{path}"


V3_MIN_SECONDS, V3_MAX_SECONDS = 60, 365 * 86400
_V3_RANGE_MESSAGES = {
    name: {
        "min_value": f"{name} is too small: at least {V3_MIN_SECONDS} seconds.",
        "max_value": f"{name} is too large: at most {V3_MAX_SECONDS} seconds.",
    }
    for name in ("timeout", "grace")
}


class V3CheckInputSerializer(serializers.Serializer):
    """The fields Healthchecks' create and update accept."""

    name = StrictCharField(max_length=100, required=False, allow_blank=True)
    slug = StrictCharField(max_length=100, required=False, allow_blank=True)
    tags = StrictCharField(max_length=500, required=False, allow_blank=True)
    desc = StrictCharField(max_length=5000, required=False, allow_blank=True)
    # Healthchecks' documented range for both, in seconds: 60 (one minute) .. 31536000 (365
    # days). Any whole second in it is accepted (Tocsin's grace may go lower through
    # /api/tocsin/v1/).
    timeout = StrictIntegerField(
        required=False,
        min_value=V3_MIN_SECONDS,
        max_value=V3_MAX_SECONDS,
        error_messages=_V3_RANGE_MESSAGES["timeout"],
    )
    grace = StrictIntegerField(
        required=False,
        min_value=V3_MIN_SECONDS,
        max_value=V3_MAX_SECONDS,
        error_messages=_V3_RANGE_MESSAGES["grace"],
    )
    schedule = StrictCharField(max_length=200, required=False)
    tz = StrictCharField(max_length=64, required=False)
    manual_resume = StrictBooleanField(required=False)
    methods = serializers.ChoiceField(["", "POST"], required=False)
    channels = StrictCharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Accepted and ignored: Tocsin notifies the team (see the README).",
    )
    success_kw = StrictCharField(max_length=2000, required=False, allow_blank=True)
    failure_kw = StrictCharField(max_length=2000, required=False, allow_blank=True)
    filter_body = StrictBooleanField(required=False)
    unique = serializers.ListField(
        child=serializers.ChoiceField(UNIQUE_FIELDS), required=False, max_length=5
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        # `api_key` (the key in the body, as Healthchecks allows) was read by the
        # authentication; it and other unknown fields are ignored, as Healthchecks ignores them.
        return super().to_internal_value(data)


def _is_oncalendar(expression: str) -> bool:
    fields = expression.split()
    return not (expression.startswith("@") or len(fields) == 5)


def v3_changes(data: dict, version: int = 3) -> dict:
    """Healthchecks fields -> the settings save_check_settings reads."""
    changes = {}
    renames = {"name": "name", "slug": "slug", "desc": "description", "grace": "grace"}
    for theirs, ours in renames.items():
        if theirs in data:
            changes[ours] = data[theirs]
    if version < 3 and "name" in data:
        # v1 and v2 derive the slug from the name on every write that names the check.
        changes["slug"] = slugify(data["name"])
    if "slug" in changes:
        changes["slug"] = changes["slug"].lower()
    if "tags" in data:
        changes["tags"] = data["tags"].split()
    if "timeout" in data:
        changes["schedule_kind"] = ScheduleKind.PERIOD
        changes["period"] = data["timeout"]
    if "schedule" in data:
        expression = data["schedule"]
        changes["schedule_kind"] = (
            ScheduleKind.ONCALENDAR if _is_oncalendar(expression) else ScheduleKind.CRON
        )
        changes["schedule_expression"] = expression
    if "tz" in data:
        changes["timezone"] = data["tz"]
    if "manual_resume" in data:
        changes["manual_resume"] = data["manual_resume"]
    if "methods" in data:
        changes["post_only"] = data["methods"] == "POST"
    for theirs, ours in (("success_kw", "success_keywords"), ("failure_kw", "failure_keywords")):
        if theirs in data:
            changes[ours] = "\n".join(k.strip() for k in data[theirs].split(",") if k.strip())
    return changes


def _save(team, changes, check=None) -> Check:
    try:
        return save_check_settings(team=team, changes=changes, check=check)
    except SettingsInvalid as exc:
        raise ValidationError(exc.fields) from None


class V3Mixin(HealthchecksApiMixin):
    authentication_classes = [HealthchecksBodyKeyAuthentication]
    parser_classes = [LimitedJSONParser, AnyContentTypeJSONParser]

    def as_dict(self, check: Check) -> dict:
        return check_as_v3(
            check, read_only=self.request.user.is_read_only, version=self.api_version
        )

    def find_check(self, code: str) -> Check:
        """The team's check by UUID or, for 40 hex digits, by unique_key (a scan of the
        team's checks, as in Healthchecks: the key is a hash, not a column)."""
        checks = Check.objects.filter(team=self.team).select_related("team")
        if len(code) == 40:
            for check in checks:
                if unique_key(check) == code.lower():
                    return check
            raise NotFound("No such check.")
        return get_object_or_404(checks, id=code)

    def answer(self, check: Check, code=status.HTTP_200_OK) -> Response:
        check = Check.objects.select_related("team").get(id=check.id)
        return Response(self.as_dict(show_current([check])[0]), code)

    def check_channels(self, fields: dict) -> None:
        """`channels` names the team's channels ("" none, "*" all, else ids or names separated
        by commas). Tocsin notifies through escalation policies, so the value is not stored,
        but a name that matches no channel is refused as Healthchecks refuses it."""
        wanted = fields.get("channels")
        if not wanted or wanted == "*":
            return
        available = list(Channel.objects.filter(team=self.team).values_list("id", "name"))
        for item in wanted.split(","):
            if not item:
                raise HealthchecksError("empty channel identifier")
            matches = [cid for cid, name in available if str(cid) == item or name == item]
            if not matches:
                raise HealthchecksError(f"invalid channel identifier: {item[:100]}")
            if len(matches) > 1:
                raise HealthchecksError(f"non-unique channel identifier: {item[:100]}")


class V3CheckList(V3Mixin, APIView):
    @extend_schema(
        summary="Healthchecks v3: list checks",
        parameters=[
            OpenApiParameter("tag", str, many=True, description="Only checks with every tag."),
            OpenApiParameter("slug", str),
        ],
        responses={200: V3CheckListSerializer},
        operation_id="v3_checks_list",
    )
    def get(self, request):
        checks = Check.objects.filter(team=self.team).select_related("team").order_by("name")
        for tag in request.query_params.getlist("tag")[:20]:
            if len(tag) > 50 or "\x00" in tag:
                raise ValidationError({"tag": ["Not a tag."]})
            checks = checks.filter(tag_filter(tag))
        slug = request.query_params.get("slug")
        if slug is not None:
            checks = checks.filter(slug=slug[:100].replace("\x00", ""))
        return Response({"checks": [self.as_dict(check) for check in show_current(checks)]})

    @extend_schema(
        summary="Healthchecks v3: create a check (or update the one `unique` matches)",
        request=V3CheckInputSerializer,
        responses={200: V3CheckSerializer, 201: V3CheckSerializer},
        operation_id="v3_checks_create",
    )
    def post(self, request):
        data = V3CheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        self.check_channels(fields)
        changes = v3_changes(fields, self.api_version)
        existing = self._match(fields, changes)
        if existing is not None:
            return self.answer(_save(self.team, changes, existing))
        return self.answer(_save(self.team, changes), status.HTTP_201_CREATED)

    def _match(self, fields: dict, changes: dict) -> Check | None:
        unique = fields.get("unique") or []
        if not unique or any(name not in fields for name in unique):
            return None  # as in Healthchecks: a unique field left out matches nothing
        wanted = Q(team=self.team)
        for name in unique:
            if name == "name":
                wanted &= Q(name=changes.get("name", ""))
            elif name == "slug":
                wanted &= Q(slug=changes.get("slug", "").lower())
            elif name == "tags":
                wanted &= Q(tags=" ".join(changes.get("tags", [])))
            elif name == "timeout":
                wanted &= Q(schedule_kind=ScheduleKind.PERIOD, period=_seconds(fields, "timeout"))
            elif name == "grace":
                wanted &= Q(grace=_seconds(fields, "grace"))
        return Check.objects.filter(wanted).order_by("created_at").first()


def _seconds(fields, name):
    defaults = {"timeout": timedelta(days=1), "grace": timedelta(hours=1)}
    if name not in fields:
        return defaults[name]
    value = fields[name]
    if not 0 <= value <= 10**9:
        raise ValidationError({name: ["Out of range."]})
    return timedelta(seconds=value)


class V3CheckDetail(V3Mixin, APIView):
    @extend_schema(
        summary="Healthchecks v3: read a check (by UUID, or by unique_key)",
        parameters=[
            OpenApiParameter(
                "code", str, OpenApiParameter.PATH, description="The UUID or unique_key."
            )
        ],
        responses={200: V3CheckSerializer},
        operation_id="v3_checks_read",
    )
    def get(self, request, code):
        return self.answer(self.find_check(code))

    @extend_schema(
        summary="Healthchecks v3: update a check (fields left out are unchanged)",
        request=V3CheckInputSerializer,
        responses={200: V3CheckSerializer},
        operation_id="v3_checks_update",
    )
    def post(self, request, code):
        check = self.find_check(code)
        data = V3CheckInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.check_channels(data.validated_data)
        changes = v3_changes(data.validated_data, self.api_version)
        return self.answer(_save(self.team, changes, check))

    @extend_schema(
        summary="Healthchecks v3: delete a check (answers with the deleted check)",
        responses={200: V3CheckSerializer},
        operation_id="v3_checks_delete",
    )
    def delete(self, request, code):
        check = self.find_check(code)
        body = check_as_v3(show_current([check])[0], read_only=False, version=self.api_version)
        check.delete()
        return Response(body)


class V3Pause(V3Mixin, APIView):
    @extend_schema(
        summary="Healthchecks v3: pause a check",
        request=None,
        responses={200: V3CheckSerializer},
        operation_id="v3_checks_pause",
    )
    def post(self, request, code):
        check = self.find_check(code)
        return self.answer(pause_check(check_id=check.id, now=database_now()))


class V3Resume(V3Mixin, APIView):
    @extend_schema(
        summary="Healthchecks v3: resume a paused check (409 when it is not paused)",
        request=None,
        responses={200: V3CheckSerializer},
        operation_id="v3_checks_resume",
    )
    def post(self, request, code):
        check = self.find_check(code)
        if check.status != Check.Status.PAUSED:
            raise Conflict("The check is not paused.")
        return self.answer(resume_check(check_id=check.id, now=database_now()))


class V3PingSerializer(serializers.Serializer):
    type = serializers.ChoiceField(["success", "fail", "start", "log", "ign"])
    date = serializers.DateTimeField()
    n = serializers.IntegerField()
    scheme = serializers.CharField()
    remote_addr = serializers.CharField()
    method = serializers.CharField()
    ua = serializers.CharField()
    rid = serializers.UUIDField(allow_null=True)
    body_url = serializers.URLField(allow_null=True)
    exitstatus = serializers.IntegerField(required=False)
    duration = serializers.FloatField(required=False)


class V3PingListSerializer(serializers.Serializer):
    pings = V3PingSerializer(many=True)


class V3PingList(V3Mixin, APIView):
    permission_classes = [HasReadWriteTeamKey]

    @extend_schema(
        summary="Healthchecks v3: a check's pings, newest first",
        responses={200: V3PingListSerializer},
        operation_id="v3_checks_pings",
    )
    def get(self, request, code):
        check = self.find_check(code)
        starts = {}
        # The newest pings (the limit applies from the newest end, as in Healthchecks), then
        # oldest first so that a finish meets its start; bodies are not loaded, only sized.
        newest = (
            check.pings.defer("body")
            .annotate(body_length=Length("body"))
            .order_by("-n")[: settings.PINGS_KEPT_PER_CHECK * 2]
        )
        pings = list(newest)[::-1]
        items = []
        for ping in pings:
            kind = "ign" if ping.outcome == "ignored" else PING_TYPES.get(ping.kind, ping.kind)
            item = {
                "type": kind,
                "date": _iso(ping.received_at),
                "n": ping.n,
                "scheme": "http",
                "remote_addr": ping.remote_addr,
                "method": ping.method,
                "ua": ping.user_agent,
                "rid": str(ping.run_id) if ping.run_id else None,
                "body_url": (
                    api_url(self.api_version, f"checks/{check.id}/pings/{ping.n}/body")
                    if ping.body_length
                    else None
                ),
            }
            if ping.exit_status is not None:
                item["exitstatus"] = ping.exit_status
            if kind == "start":
                starts[ping.run_id] = ping.received_at
            elif kind in ("success", "fail") and ping.run_id in starts:
                started = starts.pop(ping.run_id)
                item["duration"] = round((ping.received_at - started).total_seconds(), 3)
            items.append(item)
        return Response({"pings": items[::-1]})


class V3PingBody(V3Mixin, APIView):
    permission_classes = [HasReadWriteTeamKey]

    @extend_schema(
        summary="Healthchecks v3: the logged body of one ping, as plain text",
        responses={(200, "text/plain"): OpenApiTypes.STR},
        operation_id="v3_checks_ping_body",
    )
    def get(self, request, code, n):
        check = self.find_check(code)
        ping = check.pings.filter(n=n).only("body").first()
        # As in Healthchecks: a ping that was pruned, never existed or had no body is a 404.
        if ping is None or not bytes(ping.body):
            raise NotFound("No such ping, or the ping has no body.")
        # The body as the job sent it; errors above stay in the API's JSON shape.
        return HttpResponse(bytes(ping.body), content_type="text/plain; charset=utf-8")


class V3ChannelSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()


class V3ChannelListSerializer(serializers.Serializer):
    channels = V3ChannelSerializer(many=True)


class V3ChannelList(HealthchecksApiMixin, APIView):
    """The team's channels. Tocsin routes notifications through escalation policies, so a
    check's `channels` field stays empty; this list is for tools that show or audit them."""

    permission_classes = [HasReadWriteTeamKey]
    cors_methods = "GET, OPTIONS"

    @extend_schema(
        summary="Healthchecks v3: the team's notification channels",
        responses={200: V3ChannelListSerializer},
        operation_id="v3_channels_list",
    )
    def get(self, request):
        channels = Channel.objects.filter(team=self.team).order_by("name", "id")
        return Response(
            {"channels": [{"id": str(c.id), "name": c.name, "kind": c.kind} for c in channels]}
        )


class V3FlipSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    up = serializers.IntegerField()


class V3FlipListSerializer(serializers.Serializer):
    flips = V3FlipSerializer(many=True)


class V3FlipList(V3Mixin, APIView):
    @extend_schema(
        summary="Healthchecks v3: a check's ups and downs, newest first (by UUID or unique_key)",
        parameters=[
            OpenApiParameter("seconds", int, description="Only flips this recent."),
            OpenApiParameter("start", int, description="Unix time: flips from then on."),
            OpenApiParameter("end", int, description="Unix time: flips before then."),
        ],
        responses={200: V3FlipListSerializer},
        operation_id="v3_checks_flips",
    )
    def get(self, request, code):
        check = self.find_check(code)
        flips = check.flips.filter(to_status__in=[Check.Status.UP, Check.Status.DOWN])
        now = database_now()
        for name in ("seconds", "start", "end"):
            raw = request.query_params.get(name)
            if raw is None:
                continue
            if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
                raise ValidationError({name: ["Must be a whole number of seconds."]})
            value = int(raw)
            if name == "seconds":
                flips = flips.filter(happened_at__gte=now - _timedelta(value))
            elif name == "start":
                flips = flips.filter(happened_at__gte=datetime.fromtimestamp(value, tz=UTC))
            else:
                flips = flips.filter(happened_at__lt=datetime.fromtimestamp(value, tz=UTC))
        body = [
            {"timestamp": _iso(flip.happened_at), "up": int(flip.to_status == Check.Status.UP)}
            for flip in flips.order_by("-happened_at", "-id")[:1000]
        ]
        # What Healthchecks' server answers (its docs' example shows the bare list).
        return Response({"flips": body})


def _timedelta(seconds: int):
    return timedelta(seconds=min(seconds, 10**9))
