"""The Django side of the benchmarks on the real stack (gunicorn, Celery worker and beat), which
bench/run.py starts and stops. DATABASE_URL names the benchmark's database.

    python bench/live.py e2e-setup --checks 1000 --receiver http://127.0.0.1:8109/hook
        a team whose default escalation policy pages one webhook channel (the local receiver,
        bench/receiver.py), and 1,000 new checks (period 1 minute, grace 1 second).
    python bench/live.py e2e-run --lead 20 --receiver-log bench/var/receiver.jsonl
        waits for the stack's sweeper, then records one success ping per check through the
        project's record_ping at an injected time, so that every deadline (period + grace +
        CLOCK_SKEW_ALLOWANCE) passes at the same instant, `lead` seconds from now; the stack
        folds them, turns them late and down, and delivers. Watches the outbox and the
        receiver's log until every notification is final; prints one JSON line.
    python bench/live.py soak-setup --checks 1000 --tokens bench/var/soak-tokens.txt
        1,000 new checks (period 1 minute, grace 1 second) whose tokens wrk then pings.
    python bench/live.py soak-watch --stop-file bench/var/soak.stop
        samples the unfolded pings every second (while wrk runs, then until the stack caught
        up or --drain-timeout passed, once the stop file exists) and prints one JSON line:
        the largest backlog, and every flip dated before the pings stopped that is not
        new -> up (a false alarm: each check was pinged well within its period).

Only the project's public pieces: models, record_ping, services; no sweeper internals.
"""

import argparse
import json
import os
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F, Q, Sum  # noqa: E402

from apps.checks.models import Check, Flip, Ping, SweepRun  # noqa: E402
from apps.checks.pings import PingData, record_ping  # noqa: E402
from apps.clock import database_now  # noqa: E402
from apps.escalation.models import EscalationPolicy  # noqa: E402
from apps.escalation.services import add_step  # noqa: E402
from apps.incidents.models import Incident  # noqa: E402
from apps.notifications.models import Channel, Delivery, Notification  # noqa: E402
from apps.teams.models import Team  # noqa: E402
from apps.teams.services import create_team  # noqa: E402

TEAM_SLUG = "bench-live"
FINAL = (
    Notification.DeliveryStatus.SENT,
    Notification.DeliveryStatus.FAILED,
    Notification.DeliveryStatus.SKIPPED,
)


def reset() -> Team:
    """An empty database for the run: no checks, no sweep history (a gap in it would make
    the stack's first sweep think it was blind), and a fresh team."""
    tables = [Check._meta.db_table, SweepRun._meta.db_table]
    with connection.cursor() as cursor:
        # CASCADE: pings, flips, runs, incidents, their timelines and outbox rows.
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    Team.objects.filter(slug=TEAM_SLUG).delete()  # channels, policies, deliveries
    return create_team(name="Bench live", slug=TEAM_SLUG)


def create_checks(team: Team, checks: int, *, period: timedelta, grace: timedelta) -> list:
    tokens = [uuid.uuid4() for _ in range(checks)]
    Check.objects.bulk_create(
        Check(
            team=team,
            name=f"Live job {i:04d}",
            slug=f"live-job-{i:04d}",
            id=token,
            period=period,
            grace=grace,
        )
        for i, token in enumerate(tokens)
    )
    return tokens


def e2e_setup(checks: int, receiver: str, channels: int, period: int, grace: int) -> None:
    team = reset()
    policies = []
    for n in range(channels):
        channel = Channel.objects.create(
            team=team, name=f"receiver {n}", kind=Channel.Kind.WEBHOOK, config={"url": receiver}
        )
        if n == 0:
            # A new team comes with its default policy ("Everyone by email"): the first
            # receiver's policy takes its place as the default.
            EscalationPolicy.objects.filter(team=team, is_default=True).update(is_default=False)
        policy = EscalationPolicy.objects.create(team=team, name=f"hook {n}", is_default=n == 0)
        add_step(
            policy=policy,
            wait=timedelta(hours=1),
            targets=[{"kind": "channel", "id": channel.id}],
            severities="",
            limit=10,
        )
        policies.append(policy)
    create_checks(team, checks, period=timedelta(seconds=period), grace=timedelta(seconds=grace))
    if channels > 1:
        # Spread the checks over the policies, one channel each (the first is the default).
        ids = list(Check.objects.filter(team=team).order_by("slug").values_list("id", flat=True))
        for n, policy in enumerate(policies[1:], start=1):
            Check.objects.filter(id__in=ids[n::channels]).update(escalation_policy=policy)
    print(json.dumps({"checks": checks, "channels": channels}), flush=True)


def wait_for_sweep(after, timeout: float) -> None:
    """Until the stack's sweeper has run once after `after` (the stack is up and judging)."""
    deadline = time.monotonic() + timeout
    while not SweepRun.objects.filter(started_at__gt=after).exists():
        if time.monotonic() > deadline:
            sys.exit(f"no sweep recorded within {timeout:.0f} s: is the worker or beat down?")
        time.sleep(0.2)


def read_receiver(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def e2e_run(lead: float, receiver_log: Path, timeout: float, ready_timeout: float) -> None:
    team = Team.objects.get(slug=TEAM_SLUG)
    checks = list(Check.objects.filter(team=team))
    wait_for_sweep(database_now(), ready_timeout)
    period, grace = checks[0].period, checks[0].grace
    allowance = settings.CLOCK_SKEW_ALLOWANCE
    if not isinstance(allowance, timedelta):  # seconds, in case the setting becomes a number
        allowance = timedelta(seconds=allowance)
    # Pinged `period - lead` ago: the deadlines (all equal) pass `lead` seconds from now.
    pinged_at = database_now() - period + timedelta(seconds=lead)
    ping = PingData(kind=Ping.Kind.SUCCESS, method="GET")
    for check in checks:
        record_ping(ping=ping, token=check.ping_token, now=pinged_at)
    late_at = pinged_at + period + allowance
    down_at = late_at + grace
    notifications = Notification.objects.filter(incident__owner__team=team)
    incidents = Incident.objects.filter(owner__team=team)
    still_judged = Check.objects.filter(
        team=team, status__in=[Check.Status.NEW, Check.Status.UP, Check.Status.LATE]
    )
    started = time.monotonic()
    timed_out = False
    while True:
        time.sleep(0.5)
        total = notifications.count()
        final = notifications.filter(status__in=FINAL).count()
        if total >= len(checks) and final == total:
            break
        # Every check reached its verdict (down, or unknown when the stack judged itself
        # blind) and every message owed for it went out: nothing more will arrive.
        if not still_judged.exists() and total >= incidents.count() and final == total:
            break
        if time.monotonic() - started > timeout:
            timed_out = True
            break
    arrivals = read_receiver(receiver_log)
    times = sorted(a["t"] for a in arrivals)
    down = down_at.timestamp()
    flips = Flip.objects.filter(owner__team=team)
    down_flips = flips.filter(to_status=Check.Status.DOWN)
    record = {
        "checks": len(checks),
        "lead_s": lead,
        "pinged_at": pinged_at.isoformat(),
        "late_at": late_at.isoformat(),
        "down_at": down_at.isoformat(),
        "timed_out": timed_out,
        "first_webhook_after_s": round(times[0] - down, 3) if times else None,
        "last_webhook_after_s": round(times[-1] - down, 3) if times else None,
        "messages": len(arrivals),
        "incidents_in_messages": sum(max(a["count"], 0) for a in arrivals),
        "distinct_deliveries": len({a["delivery"] for a in arrivals}),
        "incidents": incidents.count(),
        "statuses": dict(
            Check.objects.filter(team=team).values_list("status").annotate(n=Count("id"))
        ),
        "flips": dict(flips.values_list("to_status").annotate(n=Count("id"))),
        "down_flips_backdated_to": [
            x.isoformat() if x else None
            for x in (
                down_flips.order_by("happened_at").values_list("happened_at", flat=True).first(),
                down_flips.order_by("-happened_at").values_list("happened_at", flat=True).first(),
            )
        ],
        "notifications": dict(notifications.values_list("status").annotate(n=Count("id"))),
        "deliveries": dict(
            Delivery.objects.filter(team=team).values_list("status").annotate(n=Count("id"))
        ),
    }
    print(json.dumps(record), flush=True)


def soak_setup(checks: int, tokens_path: Path, period: int, grace: int) -> None:
    team = reset()
    tokens = create_checks(
        team, checks, period=timedelta(seconds=period), grace=timedelta(seconds=grace)
    )
    tokens_path.write_text("".join(f"{t}\n" for t in tokens))
    print(json.dumps({"checks": checks}), flush=True)


def soak_watch(stop_file: Path, drain_timeout: float, ready_timeout: float) -> None:
    team = Team.objects.get(slug=TEAM_SLUG)
    team_checks = Check.objects.filter(team=team)
    wait_for_sweep(database_now(), ready_timeout)
    started_at = database_now()
    print(json.dumps({"ready": True}), flush=True)
    samples = []
    drain_started = pings_stopped_at = None
    while True:
        tick = time.monotonic()
        row = team_checks.aggregate(
            unfolded=Sum(F("n_pings") - F("processed_n")),
            checks_behind=Count("id", filter=Q(n_pings__gt=F("processed_n"))),
            pings=Sum("n_pings"),
        )
        samples.append({"t": round(time.time(), 3), **{k: v or 0 for k, v in row.items()}})
        if drain_started is None and stop_file.exists():
            drain_started, pings_stopped_at = time.monotonic(), database_now()
        if drain_started is not None and (
            samples[-1]["unfolded"] == 0 or time.monotonic() - drain_started > drain_timeout
        ):
            break
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    # Flips are dated when they should have happened. While wrk ran, every check was pinged
    # well within its period, so any flip dated before the pings stopped (other than a new
    # check's first up) is false; after that, deadlines really pass once a period is over.
    flips = Flip.objects.filter(owner__team=team, happened_at__gte=started_at)
    flips = flips.exclude(from_status=Check.Status.NEW, to_status=Check.Status.UP)
    false_alarms = flips.filter(happened_at__lt=pings_stopped_at)
    worst = max(samples, key=lambda s: s["unfolded"])
    record = {
        "samples": len(samples),
        "max_unfolded": worst["unfolded"],
        "max_checks_behind": max(s["checks_behind"] for s in samples),
        "max_unfolded_at": worst["t"],
        "drain_s": round(time.monotonic() - drain_started, 1) if drain_started else None,
        "left_unfolded": samples[-1]["unfolded"],
        "pings": samples[-1]["pings"],
        "pings_stopped_at": pings_stopped_at.isoformat() if pings_stopped_at else None,
        "false_flips": dict(false_alarms.values_list("to_status").annotate(n=Count("id"))),
        "false_flip_examples": [
            f"{f.owner_id}: {f.from_status} -> {f.to_status} at {f.happened_at.isoformat()}"
            for f in false_alarms.order_by("happened_at")[:5]
        ],
        "flips_after_pings_stopped": dict(
            flips.filter(happened_at__gte=pings_stopped_at)
            .values_list("to_status")
            .annotate(n=Count("id"))
        ),
        "statuses": dict(team_checks.values_list("status").annotate(n=Count("id"))),
        "series": [[s["t"], s["unfolded"], s["checks_behind"]] for s in samples],
    }
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("e2e-setup")
    p.add_argument("--checks", type=int, default=1000)
    p.add_argument("--receiver", required=True)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--period", type=int, default=60, help="seconds (the minimum is 60)")
    p.add_argument("--grace", type=int, default=1, help="seconds")
    r = sub.add_parser("e2e-run")
    r.add_argument("--lead", type=float, default=20.0)
    r.add_argument("--receiver-log", type=Path, required=True)
    r.add_argument("--timeout", type=float, default=420.0)
    r.add_argument("--ready-timeout", type=float, default=120.0)
    s = sub.add_parser("soak-setup")
    s.add_argument("--checks", type=int, default=1000)
    s.add_argument("--tokens", type=Path, required=True)
    s.add_argument("--period", type=int, default=60)
    s.add_argument("--grace", type=int, default=1)
    w = sub.add_parser("soak-watch")
    w.add_argument("--stop-file", type=Path, required=True)
    w.add_argument("--drain-timeout", type=float, default=120.0)
    w.add_argument("--ready-timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.command == "e2e-setup":
        e2e_setup(args.checks, args.receiver, args.channels, args.period, args.grace)
    elif args.command == "e2e-run":
        e2e_run(args.lead, args.receiver_log, args.timeout, args.ready_timeout)
    elif args.command == "soak-setup":
        soak_setup(args.checks, args.tokens, args.period, args.grace)
    else:
        soak_watch(args.stop_file, args.drain_timeout, args.ready_timeout)


if __name__ == "__main__":
    main()
