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


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite the test database is a file (WAL mode, like the embedded default's), not
    Django's in-memory database: an in-memory database exists only inside one connection, so
    the live server's and the worker's threads would have to borrow the test's connection and
    take turns, and no test could run two transactions at once. With a file every thread has
    its own connection, as web, worker and beat have their own processes in the embedded mode,
    and the concurrency tests run on SQLite too. A fresh folder per session: two sessions never
    share it."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        folder = tmp_path_factory.mktemp("sqlite")
        database.setdefault("TEST", {})["NAME"] = str(folder / "test.sqlite3")


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
    # Every test gets a cache namespace of its own, whatever the backend (Redis, or the
    # in-memory cache of the embedded default, which lives as long as the process): the counts
    # of the API key throttle and the account rate limits never carry over from one test to
    # the next. Clearing instead would not do: on Redis the cache shares its database with the
    # Celery broker. The live server and the worker run in this process, so they see it too.
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for alias, config in settings.CACHES.items()
    }
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
