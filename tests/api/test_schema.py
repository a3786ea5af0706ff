"""The OpenAPI schema at /api/tocsin/v1/schema/ against the running API, with schemathesis.

Every operation of the schema (v1: checks, incidents, silences, maintenance windows, escalation
policies, channels, rotations, notification settings, metrics; and the Healthchecks-compatible
v3) is called over real HTTP, on the production WSGI app, with a real read-write key of a team
that has one of each object, with inputs generated from the schema (valid and invalid). Each
answer must not be a server error and must match what the schema says: status code, content
type, headers and body.

Bounded for CI: a few examples per operation (hypothesis settings below) and no shrinking of
failures beyond what hypothesis does in that budget."""

from datetime import timedelta

import pytest
import requests
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.api.keys import create_api_key
from apps.checks.pings import PingData, record_ping
from apps.checks.sweeper import sweep_due_checks
from apps.escalation.models import (
    EscalationPolicy,
    EscalationStep,
    MaintenanceWindow,
    Rotation,
    RotationOverride,
    Silence,
)
from apps.notifications.models import Channel
from tests.factories import CheckFactory, MembershipFactory, TeamFactory

EXAMPLES_PER_OPERATION = 12
# What the issue asks: no server errors, and answers as documented (status code, content type,
# headers, body). Not positive_data_acceptance: input the schema allows may still break a rule
# it cannot express (a name already taken, an end before the start): a documented 400. Not
# negative_data_rejection: DRF reads an empty or malformed optional query value (`?state=`,
# `?page_size=false`) as absent, as the checks endpoints always have; the tests of each
# endpoint assert the 400s for bad input instead.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def seeded_key(transactional_db, settings, t0):
    """A read-write key of a team with a check (with pings and an incident), a silence, a
    maintenance window, a policy with a step, a webhook channel and a rotation with an override,
    so that lists and reads
    return real objects whose shape the schema must describe."""
    settings.API_THROTTLE_RATE = "100000/minute"
    team = TeamFactory(name="Ops", slug="ops")
    check = CheckFactory(team=team, name="nightly", slug="nightly", tags="db nightly")
    record_ping(ping=PingData(kind="start", method="GET"), token=check.ping_token, now=t0)
    record_ping(
        ping=PingData(kind="fail", method="POST", body=b"disk full"),
        token=check.ping_token,
        now=t0 + timedelta(seconds=30),
    )
    sweep_due_checks(now=t0 + timedelta(minutes=1))
    channel = Channel.objects.create(
        team=team, name="hook", kind="webhook", config={"url": "https://93.184.216.34/hook"}
    )
    policy = EscalationPolicy.objects.create(team=team, name="default", is_default=True)
    EscalationStep.objects.create(
        policy=policy, order=0, targets=[{"kind": "channel", "id": channel.id}]
    )
    far = t0 + timedelta(days=3650)
    silence = Silence.objects.create(
        team=team,
        starts_at=t0,
        ends_at=far,
        matchers={"tags": ["db"]},
        comment="migration",
        created_at=t0,
    )
    window = MaintenanceWindow.objects.create(
        team=team,
        name="sunday",
        cron="0 2 * * 0",
        duration=timedelta(hours=2),
        matchers={"whole_team": True},
        comment="patching",
        created_at=t0,
    )
    member = MembershipFactory(team=team, role="admin").user
    rotation = Rotation.objects.create(
        team=team, name="primary", handoff_time="09:00", start_date=t0.date()
    )
    rotation.members.create(user=member, order=0)
    override = RotationOverride.objects.create(
        rotation=rotation, user=member, starts_at=t0, ends_at=t0 + timedelta(days=1)
    )
    # The channel's "send a test" really sends, to a public address that may not answer here:
    # short, so that the run does not wait 10 s per attempt.
    settings.OUTBOUND_TIMEOUT = 0.5
    key = create_api_key(team=team, name="schemathesis", is_read_only=False).secret
    real_ids = {
        "/api/tocsin/v1/members/": {"id": member.id},
        "/api/tocsin/v1/checks/by-slug/": {"slug": check.slug},
        "/api/tocsin/v1/checks/": {"id": str(check.id)},
        "/api/tocsin/v1/incidents/": {"id": check.incidents.get().id},
        "/api/tocsin/v1/silences/": {"id": silence.id},
        "/api/tocsin/v1/maintenance-windows/": {"id": window.id},
        "/api/tocsin/v1/escalation-policies/": {"id": policy.id},
        "/api/tocsin/v1/channels/": {"id": channel.id},
        "/api/tocsin/v1/rotations/": {"id": rotation.id, "override_id": override.id},
        "/api/v3/": {"code": str(check.id)},
    }
    return key, real_ids


# Every operation of the schema belongs to one of these groups (a test below makes sure): one
# test per group, so that a failure names its part of the API.
GROUPS = {
    "checks": "/api/tocsin/v1/checks/",
    "incidents": "/api/tocsin/v1/incidents/",
    "silences": "/api/tocsin/v1/silences/",
    "maintenance-windows": "/api/tocsin/v1/maintenance-windows/",
    "escalation-policies": "/api/tocsin/v1/escalation-policies/",
    "channels": "/api/tocsin/v1/channels/",
    "members": "/api/tocsin/v1/members/",
    "rotations": "/api/tocsin/v1/rotations/",
    "notification-settings": "/api/tocsin/v1/notification-settings/",
    "metrics": "/api/tocsin/v1/metrics/",
    "healthchecks-v3": "/api/v3/",
}


def load_schema(live_app_url):
    """The schema as the server publishes it, at /api/tocsin/v1/schema/."""
    return schemathesis.openapi.from_url(f"{live_app_url}/api/tocsin/v1/schema/", timeout=10)


def operations(schema):
    for result in schema.get_all_operations():
        yield result.ok()


def test_every_operation_is_in_a_group(live_app_url):
    paths = {operation.path for operation in operations(load_schema(live_app_url))}
    assert paths, "the schema has no operations"
    ungrouped = sorted(p for p in paths if not any(p.startswith(g) for g in GROUPS.values()))
    assert ungrouped == []
    # Each group has operations: a router registration lost would show here.
    for prefix in GROUPS.values():
        assert any(p.startswith(prefix) for p in paths), prefix


def at_real_object(case, real_ids: dict):
    """The case addressed to a seeded object instead of a random id (which would only 404)."""
    for prefix, parameters in real_ids.items():
        if case.path.startswith(prefix):
            wanted = {k: v for k, v in parameters.items() if k in case.path_parameters}
            if wanted:
                case.path_parameters = {**case.path_parameters, **wanted}
            break
    return case


def exercise(operation, *, base_url: str, key: str, real_ids: dict) -> None:
    """Call `operation` with schema-valid and schema-invalid inputs, and with valid input at a
    real object; raise on the first answer that is a server error or does not match the
    schema."""
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    strategy = st.one_of(
        valid,
        operation.as_strategy(GenerationMode.NEGATIVE),
        valid.map(lambda case: at_real_object(case, real_ids)),
    )

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        case.call_and_validate(
            base_url=base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
            checks=CHECKS,
        )

    run()


@pytest.mark.parametrize("group", list(GROUPS))
def test_api_answers_match_the_schema(group, live_app_url, seeded_key):
    key, real_ids = seeded_key
    failures = []
    for operation in operations(load_schema(live_app_url)):
        if not operation.path.startswith(GROUPS[group]):
            continue
        try:
            exercise(operation, base_url=live_app_url, key=key, real_ids=real_ids)
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_v3_writes_to_a_checks_unique_key_are_not_a_server_error(method, live_app_url, seeded_key):
    """Found by the run above: /api/v3/checks/<40 hex digits>/ (Healthchecks' read-only
    "unique key") is routed for every method; POST and DELETE once looked it up as a UUID."""
    key, _ = seeded_key
    reply = requests.request(
        method,
        f"{live_app_url}/api/v3/checks/{'0' * 40}/",
        json={},
        headers={"X-Api-Key": key},
        timeout=10,
    )
    assert reply.status_code == 404, reply.text
    assert reply.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "method, path",
    [("post", "/api/tocsin/v1/silences/not-a-number/"), ("get", "/api/tocsin/v1/channels/%0A/")],
    ids=["unsafe-method-without-csrf-token", "encoded-newline"],
)
def test_unknown_api_urls_answer_json_404_found_by_the_run(db, method, path):
    """Found by the run above: these got Django's HTML (a CSRF 403, a plain 404)."""
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
