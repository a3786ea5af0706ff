import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from kombu import Queue

from apps.teams.models import Membership
from config.celery import app as celery_app

from .factories import CheckFactory, MembershipFactory, TeamFactory

pytest_plugins = ["tests.live", "tests.worker"]

# Every test session gets its own queues, so messages left by one run never reach another.
_SESSION_QUEUE = f"tocsin-test-{uuid.uuid4().hex[:8]}"
celery_app.conf.task_default_queue = _SESSION_QUEUE
celery_app.conf.task_queues = [Queue(_SESSION_QUEUE), Queue(f"{_SESSION_QUEUE}-deliveries")]
celery_app.conf.task_routes = {
    "apps.notifications.tasks.deliver_task": {"queue": f"{_SESSION_QUEUE}-deliveries"},
    "apps.notifications.tasks.deliver_due_task": {"queue": f"{_SESSION_QUEUE}-deliveries"},
}

T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://tocsin.example"
    # Tests walk time in jumps that would look like sweeper outages; the tests of that rule
    # switch it back on.
    settings.BLIND_WINDOW_DETECTION = False
    # Most tests are about what a notification says, not when: no grouping window unless a
    # test sets one (tests/notifications/test_grouping.py walks the 30 s / 5 min defaults).
    settings.NOTIFICATION_GROUP_WAIT = timedelta(0)
    settings.NOTIFICATION_GROUP_INTERVAL = timedelta(0)
    # Account rate limits count in the shared cache (Redis): each test starts with no attempts.
    settings.ACCOUNT_THROTTLE_NAMESPACE = uuid.uuid4().hex
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def t0():
    return T0


@pytest.fixture
def team(db):
    return TeamFactory(name="Ops", slug="ops")


def _member(team, role, username):
    return MembershipFactory(team=team, role=role, user__username=username).user


@pytest.fixture
def owner(team):
    return _member(team, Membership.Role.OWNER, "alice")


@pytest.fixture
def member(team):
    return _member(team, Membership.Role.MEMBER, "bob")


@pytest.fixture
def viewer(team):
    return _member(team, Membership.Role.VIEWER, "vera")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Elsewhere", slug="elsewhere")


@pytest.fixture
def outsider(other_team):
    return _member(other_team, Membership.Role.OWNER, "charlie")


@pytest.fixture
def check(team):
    return CheckFactory(team=team, name="nightly-backup", slug="nightly-backup")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


requires_postgres = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="needs PostgreSQL (row locks with SKIP LOCKED); SQLite has none",
)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
