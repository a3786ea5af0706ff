"""config/settings.py read in a fresh interpreter with a controlled environment.

Settings are read once at import, so each case imports them in a subprocess whose environment
holds only what the case sets (plus PATH and a temporary TOCSIN_VAR_DIR).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a-long-random-value-for-the-settings-tests-only-0123456789"
INSECURE_DEFAULT = "insecure-dev-key-do-not-use-in-production"


def import_settings(tmp_path, expression="None", **env):
    """Import config.settings with exactly `env`; return (returncode, stdout value, stderr)."""
    full_env = {"PATH": os.environ.get("PATH", ""), "TOCSIN_VAR_DIR": str(tmp_path / "var")}
    full_env.update(env)
    code = f"import json, config.settings as s; print(json.dumps({expression}, default=str))"
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    value = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, value, result.stderr


def assert_refused(result, *fragments):
    returncode, _, stderr = result
    assert returncode != 0
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), stderr
    for fragment in fragments:
        assert fragment in last_line


@pytest.mark.parametrize(
    "secret_env",
    [{}, {"SECRET_KEY": ""}, {"SECRET_KEY": INSECURE_DEFAULT}],
    ids=["missing", "empty", "development-default"],
)
@pytest.mark.parametrize("debug_env", [{}, {"DEBUG": "0"}], ids=["debug-unset", "debug-off"])
def test_start_up_refuses_a_missing_or_default_secret_key_with_debug_off(
    tmp_path, secret_env, debug_env
):
    result = import_settings(tmp_path, **secret_env, **debug_env)
    assert_refused(result, "SECRET_KEY is missing or still the development default", "DEBUG")


def test_a_real_secret_key_starts_with_debug_off(tmp_path):
    returncode, value, stderr = import_settings(
        tmp_path, "[s.DEBUG, s.SECRET_KEY]", SECRET_KEY=SECRET
    )
    assert returncode == 0, stderr
    assert value == [False, SECRET]


def test_debug_on_needs_no_secret_key(tmp_path):
    returncode, value, stderr = import_settings(tmp_path, "s.DEBUG", DEBUG="1")
    assert returncode == 0, stderr
    assert value is True


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("PING_BODY_LIMIT", "100KB", "PING_BODY_LIMIT must be a number, got '100KB'"),
        ("PING_BODY_LIMIT", "1.5", "PING_BODY_LIMIT must be a number"),
        ("PING_BODY_LIMIT", "0", "PING_BODY_LIMIT must be a positive whole number, got 0"),
        ("PING_BODY_LIMIT", "-1", "PING_BODY_LIMIT must be a positive whole number"),
        ("SWEEP_INTERVAL", "soon", "SWEEP_INTERVAL must be a number"),
        ("CLOCK_SKEW_ALLOWANCE", "-5", "CLOCK_SKEW_ALLOWANCE must not be negative"),
        ("PINGS_KEPT_PER_CHECK", "many", "PINGS_KEPT_PER_CHECK must be a number"),
        ("EMAIL_PORT", "smtp", "EMAIL_PORT must be a number"),
        ("DATABASE_URL", "not-a-url", "DATABASE_URL is malformed"),
        ("DATABASE_URL", "postgres://u@db:port/x", "DATABASE_URL is malformed"),
        ("PAGERDUTY_EVENTS_URL", "events.pagerduty.com", "PAGERDUTY_EVENTS_URL must be an http"),
        ("OPSGENIE_EU_API_URL", "ftp://api.eu.opsgenie.com", "OPSGENIE_EU_API_URL must be"),
        ("TELEGRAM_API_URL", "https://api.telegram.org/x?y=1", "TELEGRAM_API_URL must be"),
        ("TWILIO_API_URL", "https://api twilio.com", "TWILIO_API_URL must be"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 25 else None,
)
def test_a_malformed_value_stops_start_up_naming_the_variable(tmp_path, name, raw, message):
    assert_refused(import_settings(tmp_path, SECRET_KEY=SECRET, **{name: raw}), message)


def test_ping_body_limit_defaults_to_100_kb_and_can_be_set(tmp_path):
    assert import_settings(tmp_path, "s.PING_BODY_LIMIT", SECRET_KEY=SECRET)[1] == 102400
    assert (
        import_settings(tmp_path, "s.PING_BODY_LIMIT", SECRET_KEY=SECRET, PING_BODY_LIMIT="512")[1]
        == 512
    )


def test_without_database_url_sqlite_in_wal_mode_lives_in_the_var_dir(tmp_path):
    returncode, db, stderr = import_settings(tmp_path, "s.DATABASES['default']", SECRET_KEY=SECRET)
    assert returncode == 0, stderr
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "var" / "tocsin.sqlite3")
    assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
    assert db["OPTIONS"]["timeout"] > 0


def test_database_url_switches_to_postgresql(tmp_path):
    returncode, db, stderr = import_settings(
        tmp_path,
        "s.DATABASES['default']",
        SECRET_KEY=SECRET,
        DATABASE_URL="postgres://tocsin:pw@db.internal:5433/tocsin",
        CONN_MAX_AGE="30",
    )
    assert returncode == 0, stderr
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "db.internal",
        5433,
        "tocsin",
        "tocsin",
    )
    assert db["CONN_MAX_AGE"] == 30


def test_without_redis_url_celery_uses_the_filesystem_broker_under_the_var_dir(tmp_path):
    returncode, value, stderr = import_settings(
        tmp_path,
        "[s.CELERY_BROKER_URL, s.CELERY_BROKER_TRANSPORT_OPTIONS]",
        SECRET_KEY=SECRET,
    )
    assert returncode == 0, stderr
    url, options = value
    assert url == "filesystem://localhost/"
    assert options["data_folder_in"] == str(tmp_path / "var" / "broker")
    assert (tmp_path / "var" / "broker" / "processed").is_dir()


def test_redis_url_switches_the_broker_to_redis(tmp_path):
    returncode, value, stderr = import_settings(
        tmp_path, "s.CELERY_BROKER_URL", SECRET_KEY=SECRET, REDIS_URL="redis://cache:6379/2"
    )
    assert returncode == 0, stderr
    assert value == "redis://cache:6379/2"


def test_sweep_interval_drives_the_beat_schedule(tmp_path):
    returncode, value, stderr = import_settings(
        tmp_path,
        "s.CELERY_BEAT_SCHEDULE['sweep-due-checks']['schedule']",
        SECRET_KEY=SECRET,
        SWEEP_INTERVAL="2.5",
    )
    assert returncode == 0, stderr
    assert value == 2.5


def test_email_uses_smtp_only_when_a_host_is_configured(tmp_path):
    expression = "s.EMAIL_BACKEND"
    assert import_settings(tmp_path, expression, SECRET_KEY=SECRET)[1].endswith(
        "console.EmailBackend"
    )
    assert import_settings(tmp_path, expression, SECRET_KEY=SECRET, EMAIL_HOST="smtp.example")[
        1
    ].endswith("smtp.EmailBackend")


def test_provider_urls_default_to_the_providers_and_can_be_pointed_elsewhere(tmp_path):
    expression = "[s.PAGERDUTY_EVENTS_URL, s.OPSGENIE_EU_API_URL, s.PUSHOVER_API_URL]"
    _, value, _ = import_settings(tmp_path, expression, SECRET_KEY=SECRET)
    assert value == [
        "https://events.pagerduty.com",
        "https://api.eu.opsgenie.com",
        "https://api.pushover.net",
    ]
    _, value, _ = import_settings(
        tmp_path,
        "s.PAGERDUTY_EVENTS_URL",
        SECRET_KEY=SECRET,
        PAGERDUTY_EVENTS_URL="https://events.eu.pagerduty.com/",
    )
    assert value == "https://events.eu.pagerduty.com"
