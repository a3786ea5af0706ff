"""The ping protocol, compatible with Healthchecks' ping URLs:

    /ping/<uuid>[/start|/fail|/log|/progress|/<exit-status 0..255>]
    /ping/<team ping key>/<slug>[/start|/fail|/log|/progress|/<exit-status>][?create=1]

with GET, HEAD or POST, an optional `?rid=<uuid>` and, on POST, a body kept up to
PING_BODY_LIMIT bytes. Tocsin's own additions, all optional query parameters: `attempt` and
`max_attempts` (retry-aware failures), `processed` and `failed` (partial success), `done` and
`total` (progress), and `ts` (the job's send time in Unix seconds; also the header
X-Tocsin-Sent-At) for clock-skew tracking. `?create=1` on a slug URL creates the check when
the team has none with that slug (auto-provisioning, as in Healthchecks), with the team's
check defaults, up to the team's limit of checks (beyond it: 403, nothing is recorded but the
refusal count on the team's defaults).

`handle_ping` is framework-free so that both the Django view and the WSGI fast path
(config/wsgi.py) serve the exact same protocol.
"""

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs
from uuid import UUID

from django.db import DatabaseError

from apps.teams.models import Team

from .models import Check, Ping
from .pings import PingData, record_ping
from .services import Provisioning, provision_check
from .storable import storable_text

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD", "POST")
PREFIX = "/ping/"
# \Z, not $: "$" also matches before a trailing newline, and a percent-encoded %0A in the path
# must not reach UUID() (which raises) or int(). [0-9], not \d, which matches any Unicode digit.
_UUID_SHAPE = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\Z"
)
_EXIT_STATUS_SHAPE = re.compile(r"^-?[0-9]{1,6}\Z")
_COUNT_SHAPE = re.compile(r"^[0-9]{1,20}\Z")
_SLUG_SHAPE = re.compile(r"^[-a-zA-Z0-9_]+\Z")
_SLUG_MAX = Check._meta.get_field("slug").max_length
_PING_KEY_MAX = Team._meta.get_field("ping_key").max_length
_REMOTE_ADDR_MAX = Ping._meta.get_field("remote_addr").max_length
_USER_AGENT_MAX = Ping._meta.get_field("user_agent").max_length
_ACTIONS = {
    "start": Ping.Kind.START,
    "fail": Ping.Kind.FAIL,
    "log": Ping.Kind.LOG,
    "progress": Ping.Kind.PROGRESS,
}
# Optional counts a ping may carry in its query string, with their allowed range.
_COUNT_PARAMS = {
    "attempt": ("attempt", 1, 10_000),
    "max_attempts": ("max_attempts", 1, 10_000),
    "processed": ("processed", 0, 2**62),
    "failed": ("failed_items", 0, 2**62),
    "done": ("done", 0, 2**62),
    "total": ("total", 0, 2**62),
}
# A job's own send time must be a plausible Unix time (2001 .. 2100).
_SENT_AT_RANGE = (1_000_000_000, 4_102_444_800)


class BadPing(ValueError):
    """The one-line reason a ping is refused with 400."""


def parse_sent_at(value: str):
    try:
        seconds = float(value)
    except ValueError:
        raise BadPing("invalid ts: must be Unix seconds") from None
    if not _SENT_AT_RANGE[0] <= seconds <= _SENT_AT_RANGE[1]:
        raise BadPing("invalid ts: out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_query(query_string: str, sent_at_header: str) -> dict:
    """rid, counts and the job's send time from the query string (and X-Tocsin-Sent-At)."""
    facts: dict = {}
    params = parse_qs(query_string, keep_blank_values=True) if query_string else {}
    rid = params.get("rid", [""])[0]
    if rid:
        try:
            facts["run_id"] = UUID(rid)
        except ValueError:
            raise BadPing("invalid rid: must be a UUID") from None
    for name, (field, low, high) in _COUNT_PARAMS.items():
        raw = params.get(name, [""])[0]
        if not raw:
            continue
        if not _COUNT_SHAPE.match(raw) or not low <= int(raw) <= high:
            raise BadPing(f"invalid {name}: must be a whole number from {low} to {high}")
        facts[field] = int(raw)
    sent_at = params.get("ts", [""])[0] or sent_at_header
    if sent_at:
        facts["sent_at"] = parse_sent_at(sent_at.strip())
    return facts


@dataclass(frozen=True)
class PingResponse:
    status: int
    text: str

    @property
    def reason(self) -> str:
        return {
            200: "OK",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[self.status]


OK = PingResponse(200, "OK")
NOT_FOUND = PingResponse(404, "not found: no check has this ping URL")


def handle_ping(
    *,
    method: str,
    path: str,
    query_string: str,
    body: bytes,
    body_truncated: bool,
    remote_addr: str,
    user_agent: str,
    sent_at_header: str = "",
) -> PingResponse:
    if method not in ALLOWED_METHODS:
        return PingResponse(405, "method not allowed: use GET, HEAD or POST")
    parts = path[len(PREFIX) :].strip("/").split("/")
    if _UUID_SHAPE.match(parts[0]):
        if len(parts) > 2:
            return NOT_FOUND
        target = {"token": UUID(parts[0])}
        suffix = parts[1] if len(parts) == 2 else ""
    else:
        if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
            return NOT_FOUND
        # No check can match a key or slug longer than its column (cutting it short could match
        # another check) or one with a NUL or a lone surrogate, which PostgreSQL text cannot
        # hold (an error, answered 503 or worse).
        if (
            len(parts[0]) > _PING_KEY_MAX
            or len(parts[1]) > _SLUG_MAX
            or storable_text(path) != path
        ):
            return NOT_FOUND
        target = {"ping_key": parts[0], "slug": parts[1]}
        suffix = parts[2] if len(parts) == 3 else ""

    kind, exit_status = Ping.Kind.SUCCESS, None
    if suffix in _ACTIONS:
        kind = _ACTIONS[suffix]
    elif _EXIT_STATUS_SHAPE.match(suffix):
        exit_status = int(suffix)
        if not 0 <= exit_status <= 255:
            return PingResponse(400, "invalid exit status: must be 0..255")
        kind = Ping.Kind.SUCCESS if exit_status == 0 else Ping.Kind.FAIL
    elif suffix:
        return PingResponse(
            400, "invalid ping suffix: use start, fail, log, progress or an exit status"
        )
    try:
        facts = parse_query(query_string, sent_at_header)
    except BadPing as exc:
        return PingResponse(400, str(exc))

    ping = PingData(
        kind=kind,
        method=method,
        exit_status=exit_status,
        # PostgreSQL text cannot hold NUL (nor psycopg encode a lone surrogate): a hostile
        # header must not cost the job its ping.
        remote_addr=storable_text(remote_addr, _REMOTE_ADDR_MAX),
        user_agent=storable_text(user_agent, _USER_AGENT_MAX),
        body=body,
        body_truncated=body_truncated,
        **facts,
    )
    try:
        found = record_ping(ping=ping, **target)
        if not found and "slug" in target and _wants_create(query_string):
            # Only the miss path pays for auto-provisioning; a known check's ping is still the
            # one statement above.
            if not _SLUG_SHAPE.match(target["slug"]):
                return PingResponse(400, "invalid slug: use letters, digits, - and _")
            provisioned = provision_check(ping_key=target["ping_key"], slug=target["slug"])
            if provisioned.outcome == Provisioning.LIMIT_REACHED:
                # 403, not 429 or 5xx: curl --retry would repeat it, and waiting changes
                # nothing until someone raises the limit or deletes checks.
                logger.warning(
                    "auto-provisioning refused %r: the team has its %d checks",
                    target["slug"],
                    provisioned.max_checks,
                )
                return PingResponse(403, _limit_message(provisioned.max_checks))
            if provisioned.outcome != Provisioning.NO_TEAM:
                found = record_ping(ping=ping, **target)
    except DatabaseError:
        # The job's curl retries on 5xx; answering quickly beats hanging the job.
        logger.exception("could not record ping")
        return PingResponse(503, "unavailable: try again")
    return OK if found else NOT_FOUND


def _limit_message(max_checks: int) -> str:
    if max_checks == 0:
        return "forbidden: auto-provisioning is off for this team"
    return (
        f"forbidden: the team has reached its limit of {max_checks} checks for "
        "auto-provisioning; the ping was not recorded"
    )


def _wants_create(query_string: str) -> bool:
    return "create=1" in query_string.split("&")


def read_limited(stream, content_length: int | None, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes of a request body and drain the rest, so that the client
    gets its 200 instead of a reset connection. Returns (body, truncated)."""
    if content_length is not None:
        if content_length <= 0:
            return b"", False
        body = stream.read(min(content_length, limit))
        remaining = content_length - len(body)
        while remaining > 0:
            chunk = stream.read(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        return body, content_length > limit
    body = stream.read(limit + 1)
    truncated = len(body) > limit
    if truncated:
        while stream.read(65536):
            pass
    return body[:limit], truncated
