"""Issue 3's rules applied by the real sweeper on the real database, with injected time."""

import json
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.checks.deadman import ping_deadman
from apps.checks.models import Check, Ping, Run, SweepRun
from apps.checks.pings import PingData, prune_pings, record_ping
from apps.checks.services import pause_check, resume_check
from apps.checks.sweeper import sweep_due_checks
from apps.incidents.models import Incident, IncidentEvent
from apps.notifications.models import Notification

S, MIN, HOUR, DAY = (
    timedelta(seconds=1),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
)


def ping(check, kind="success", at=None, **facts):
    facts.setdefault("method", "POST")
    assert record_ping(ping=PingData(kind=kind, **facts), token=check.ping_token, now=at)


def sweep(at):
    return sweep_due_checks(now=at)


def status(check):
    check.refresh_from_db()
    return check.status


def test_hung_run_opens_a_hung_incident(check, owner, t0):
    check.max_runtime = 30 * MIN
    check.save()
    ping(check, at=t0)
    ping(check, "start", at=t0 + HOUR, run_id=uuid.uuid4())
    sweep(t0 + HOUR + MIN)
    assert status(check) == "up"
    assert check.runs.filter(outcome="running").count() == 1
    sweep(t0 + 2 * HOUR)
    assert status(check) == "down"
    incident = Incident.objects.get()
    assert incident.kind == Incident.Kind.HUNG
    assert incident.details["run_started_at"] == (t0 + HOUR).isoformat()
    run = check.runs.get(outcome="hung")
    assert run.ended_at == t0 + HOUR + 30 * MIN + timedelta(seconds=5)


def test_stalled_run_that_still_pings_progress_without_advancing(check, owner, t0):
    check.progress_timeout = 10 * MIN
    check.save()
    rid = uuid.uuid4()
    ping(check, at=t0)
    ping(check, "start", at=t0 + HOUR, run_id=rid)
    # The first progress report counts; the later ones do not advance `done`.
    for minute in (1, 5, 9):
        ping(check, "progress", at=t0 + HOUR + minute * MIN, run_id=rid, done=10, total=100)
        sweep(t0 + HOUR + minute * MIN)
    sweep(t0 + HOUR + 11 * MIN)
    assert status(check) == "up"
    sweep(t0 + HOUR + 11 * MIN + 5 * S)
    assert status(check) == "down"
    assert Incident.objects.get().kind == Incident.Kind.STALLED
    assert check.runs.get(run_id=rid).outcome == "stalled"


def test_retrying_attempts_are_recorded_and_never_alert(check, owner, t0):
    ping(check, at=t0)
    ping(check, "fail", at=t0 + HOUR, exit_status=1, attempt=1, max_attempts=3)
    ping(check, "fail", at=t0 + HOUR + MIN, exit_status=1, attempt=2, max_attempts=3)
    ping(check, "success", at=t0 + HOUR + 2 * MIN, attempt=3, max_attempts=3)
    sweep(t0 + HOUR + 3 * MIN)
    assert status(check) == "up"
    assert not Incident.objects.exists()
    outcomes = list(
        Ping.objects.filter(owner=check).order_by("n").values_list("outcome", flat=True)
    )
    assert outcomes == ["success", "retrying", "retrying", "success"]
    assert Run.objects.filter(owner=check, outcome="succeeded").order_by("-id").first().retries == 2


def test_partial_success_from_a_json_body(check, owner, t0):
    check.partial_max_ratio = 0.001
    check.save()
    ping(check, at=t0, body=json.dumps({"processed": 1000, "failed": 1}).encode())
    sweep(t0 + MIN)
    assert status(check) == "up"
    assert Ping.objects.get(owner=check).outcome == "partial"
    ping(check, at=t0 + HOUR, body=b'{"processed": 1000, "failed": 5}')
    sweep(t0 + HOUR + MIN)
    assert status(check) == "down"
    assert Incident.objects.get().kind == Incident.Kind.PARTIAL_OVER_LIMIT


def test_severity_is_raised_after_the_incident_stays_open(check, owner, t0):
    check.severity = "warning"
    check.severity_raise_after = HOUR
    check.severity_raise_to = "critical"
    check.save()
    ping(check, "fail", at=t0, exit_status=2)
    sweep(t0 + MIN)
    incident = Incident.objects.get()
    assert incident.severity == "warning"
    assert incident.severity_raise_at == t0 + HOUR
    sweep(t0 + 30 * MIN)
    incident.refresh_from_db()
    assert incident.severity == "warning"
    sweep(t0 + HOUR + MIN)
    incident.refresh_from_db()
    assert incident.severity == "critical"
    assert incident.severity_raise_at is None
    events = list(incident.events.values_list("kind", "detail"))
    assert events[0][0] == IncidentEvent.Kind.OPENED
    assert events[-1] == ("severity_raised", {"old": "warning", "new": "critical"})


def test_flapping_check_gets_one_incident_not_one_per_flip(check, owner, t0):
    check.flap_threshold = 3
    check.flap_window = HOUR
    check.save()
    at = t0
    ping(check, at=at)

    def flip(i):
        nonlocal at
        at += MIN
        ping(check, "fail" if i % 2 == 0 else "success", at=at)
        sweep(at + S)

    # More than 3 up/down changes within the hour: flapping from the 4th on.
    for i in range(4):
        flip(i)
    incidents = Incident.objects.filter(owner=check)
    flapping = incidents.get(kind=Incident.Kind.FLAPPING)
    assert flapping.state == "triggered"
    opened, sent = incidents.count(), Notification.objects.filter(event="down").count()
    for i in range(4, 24):
        flip(i)
    assert incidents.count() == opened
    assert Notification.objects.filter(event="down").count() == sent
    # Stable (up) for a whole window: the flapping incident resolves.
    ping(check, at=at + MIN)
    sweep(at + 2 * MIN)
    sweep(at + 2 * HOUR)
    flapping.refresh_from_db()
    assert flapping.state == "resolved"
    assert not incidents.exclude(state="resolved").exists()


def test_sweeper_gap_marks_missed_checks_unknown_and_pages_nobody(check, owner, t0, settings):
    settings.BLIND_WINDOW_DETECTION = True
    ping(check, at=t0)
    sweep(t0 + MIN)
    SweepRun.objects.create(started_at=t0 + DAY - MIN, duration_ms=1, examined=0, changed=0)
    # The sweeper stops at t0 + 1 day - 1 min and comes back two hours later.
    result = sweep(t0 + DAY + 2 * HOUR)
    assert result.blind is not None and result.blind.cause == "sweeper"
    assert status(check) == "unknown"
    assert not Incident.objects.exists()
    last = SweepRun.objects.order_by("-started_at").first()
    assert last.blind_since == t0 + DAY - MIN
    # Back to normal (punctual sweeps): a check that still does not ping is alerted a period
    # and a grace after Tocsin could see again, not before.
    back = t0 + DAY + 2 * HOUR
    SweepRun.objects.create(started_at=back + DAY + 30 * MIN, duration_ms=1, examined=0, changed=0)
    sweep(back + DAY + 30 * MIN + 6 * S)
    assert status(check) == "late"
    SweepRun.objects.create(started_at=back + DAY + HOUR, duration_ms=1, examined=0, changed=0)
    sweep(back + DAY + HOUR + 6 * S)
    assert status(check) == "down"
    assert Incident.objects.count() == 1


def test_a_slow_sweep_is_not_a_stopped_sweeper(check, owner, t0, settings):
    """A sweep that took longer than three intervals (a herd, a loaded box) must not make the
    next one judge Tocsin blind and turn real misses into `unknown`: the gap is counted from
    the previous sweep's end."""
    settings.BLIND_WINDOW_DETECTION = True
    ping(check, at=t0)
    sweep(t0 + MIN)
    # The check's deadline (a day and an hour's grace) passes during a sweep that took 2 min.
    started = t0 + DAY + HOUR + 10 * MIN
    SweepRun.objects.create(started_at=started, duration_ms=120_000, examined=1000, changed=1000)
    result = sweep(started + 2 * MIN + 5 * S)
    assert result.blind is None
    assert status(check) == "down"
    assert Incident.objects.count() == 1


def test_pause_resolves_the_incident_and_manual_resume(check, owner, t0):
    ping(check, "fail", at=t0)
    sweep(t0 + MIN)
    pause_check(check_id=check.id, now=t0 + 2 * MIN)
    assert status(check) == "paused"
    assert Incident.objects.get().resolution == Incident.Resolution.PAUSED
    check.manual_resume = True
    check.save()
    ping(check, at=t0 + HOUR)
    sweep(t0 + HOUR + MIN)
    assert status(check) == "paused"
    resume_check(check_id=check.id, now=t0 + 2 * HOUR)
    assert status(check) == "up"


def test_pruning_never_deletes_pings_the_sweeper_has_not_folded(check, settings, t0):
    for i in range(10):
        ping(check, "log", at=t0 + i * S)
    assert prune_pings(keep=3) == 0
    sweep(t0 + MIN)
    assert prune_pings(keep=3) == 7
    assert list(Ping.objects.filter(owner=check).values_list("n", flat=True)) == [10, 9, 8]


def test_clock_offset_from_header_is_recorded(client, check, t0):
    response = client.post(
        f"/ping/{check.ping_token}", HTTP_X_TOCSIN_SENT_AT=str(int(t0.timestamp()))
    )
    assert response.status_code == 200
    stored = Ping.objects.get(owner=check)
    assert stored.sent_at == t0


@pytest.mark.parametrize(
    ("query", "ignored"),
    [
        ("attempt=0&max_attempts=3", "ignored attempt=0 (not a whole number from 1 to 10000)"),
        ("attempt=abc", "ignored attempt=abc (not a whole number from 1 to 10000)"),
        ("done=-1", "ignored done=-1 (not a whole number from 0 to"),
        ("failed=1.5", "ignored failed=1.5 (not a whole number"),
        ("processed=99999999999999999999999", "ignored processed=99999999999999999999…"),
        ("total=abc", "ignored total=abc (not a whole number"),
        ("ts=abc", "ignored ts=abc (must be Unix seconds)"),
        ("ts=yesterday", "ignored ts=yesterday (must be Unix seconds)"),
        ("ts=12", "ignored ts=12 (out of range)"),
        ("ts=%00%01", "ignored ts=?? (must be Unix seconds)"),
    ],
)
def test_a_malformed_optional_value_is_ignored_and_the_ping_recorded(client, check, query, ignored):
    # A monitor must never fail the job: `curl -f` would drop a 400 and the job might fail.
    response = client.post(f"/ping/{check.ping_token}/progress?{query}")
    assert response.status_code == 200
    stored = Ping.objects.get(owner=check)
    assert stored.ignored_input.startswith(ignored)
    assert (stored.attempt, stored.done, stored.failed_items, stored.total) == (None,) * 4
    assert (stored.processed, stored.sent_at) == (None, None)


def test_good_values_beside_a_malformed_one_are_kept(client, check, t0):
    response = client.get(f"/ping/{check.ping_token}/fail?attempt=2&max_attempts=x&ts=abc")
    assert response.status_code == 200
    stored = Ping.objects.get(owner=check)
    assert (stored.attempt, stored.max_attempts, stored.sent_at) == (2, None, None)
    assert stored.ignored_input == (
        "ignored max_attempts=x (not a whole number from 1 to 10000); ts=abc (must be Unix seconds)"
    )


def test_the_ignored_values_line_is_bounded(client, check):
    query = "&".join(f"{name}={'9' * 5000}" for name in ("attempt", "done", "total", "ts"))
    assert client.get(f"/ping/{check.ping_token}?{query}").status_code == 200
    assert len(Ping.objects.get(owner=check).ignored_input) <= 200


def test_progress_endpoint_records_counts(client, check):
    rid = uuid.uuid4()
    response = client.get(f"/ping/{check.ping_token}/progress?rid={rid}&done=3&total=10")
    assert response.status_code == 200
    stored = Ping.objects.get(owner=check)
    assert (stored.kind, stored.run_id, stored.done, stored.total) == ("progress", rid, 3, 10)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        type(self).received.append(self.rfile.read(length).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_deadman_url_receives_the_sweep_summary():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ping/abc"
        assert ping_deadman(url, timeout=2, summary="swept 3") is True
        assert _Receiver.received[-1] == "swept 3"
    finally:
        server.shutdown()


def test_dead_deadman_url_fails_fast_and_quietly():
    assert ping_deadman("http://127.0.0.1:9/ping/x", timeout=1, summary="s") is False


@pytest.mark.django_db
def test_sweep_task_records_a_sweep_even_with_a_dead_deadman_url(settings):
    from apps.checks.tasks import sweep_due_checks_task

    settings.SWEEPER_DEADMAN_URL = "http://127.0.0.1:9/"
    summary = sweep_due_checks_task()
    assert summary.startswith("swept 0")
    assert SweepRun.objects.count() == 1
    assert Check.objects.count() == 0
