"""The check list's schedule, next-due and acknowledged-by columns, and danger buttons."""

import re
from datetime import timedelta
from pathlib import Path

from apps.clock import database_now
from apps.incidents.models import Incident
from apps.teams.models import UserSettings
from tests.factories import CheckFactory


def row(html: str, check) -> str:
    start = html.index(f'<tr id="check-{check.id}">')
    return html[start : html.index("</tr>", start)]


def test_list_shows_schedule_next_due_and_who_acknowledged(client, member, team):
    now = database_now()
    nightly = CheckFactory(
        team=team, name="nightly", schedule_kind="cron", schedule_expression="0 3 * * 1-5",
        timezone="Europe/Riga", status="down", last_ping_at=now - timedelta(days=1),
    )  # fmt: skip
    hourly = CheckFactory(
        team=team, name="hourly", period=timedelta(hours=1), status="up", last_ping_at=now
    )
    fresh = CheckFactory(team=team, name="fresh", status="new", last_ping_at=None)
    Incident.objects.create(
        owner=nightly, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=now, details={},
        state=Incident.State.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=member,
    )  # fmt: skip
    UserSettings.objects.create(user=member, display_timezone="Europe/Riga")
    client.force_login(member)
    html = client.get("/").text
    assert '<th scope="col" class="hide-small">Next due</th>' in html
    first = row(html, nightly)
    assert "<code>0 3 * * 1-5</code>" in first and "Europe/Riga" in first
    assert "Acknowledged by bob" in first
    assert re.search(r'class="hide-small next-due"><time datetime="[^"]+">[^<]* 03:00 EE', first)
    second = row(html, hourly)
    assert "every 1 hour" in second and "Acknowledged" not in second
    expected = (now + timedelta(hours=1)).isoformat()[:16]
    assert f'<time datetime="{expected}' in second
    assert '<span class="muted">—</span>' in row(html, fresh)
    # Worst first by default: the down check, then up, then new.
    assert html.index(first) < html.index(second) < html.index(f'id="check-{fresh.id}"')


def test_acknowledged_from_a_channel_names_someone(client, member, team):
    now = database_now()
    check = CheckFactory(team=team, status="down", last_ping_at=now)
    Incident.objects.create(
        owner=check, kind=Incident.Kind.MISSED_HEARTBEAT, opened_at=now, details={},
        state=Incident.State.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=None,
    )  # fmt: skip
    client.force_login(member)
    assert "Acknowledged by someone" in row(client.get("/").text, check)


TEMPLATES = [*Path("apps").glob("*/templates/**/*.html"), *Path("templates").glob("**/*.html")]
BUTTON = re.compile(r"<button\b([^>]*)>\s*(Delete|Remove|Revoke)\b", re.S)


def test_every_delete_remove_and_revoke_button_is_styled_as_dangerous():
    found = []
    for path in TEMPLATES:
        for attrs, word in BUTTON.findall(path.read_text()):
            found.append(path.name)
            assert "danger" in attrs, f"{path}: a “{word}” button without the danger class"
    assert len(found) >= 8  # the scan really sees the buttons
