"""The incident list's polled partial carries the tabs (their counts stay current) and a
one-line summary for screen readers; the check list's summary names the down checks."""

from django.test import Client
from django.urls import reverse

from apps.checks.models import Check
from apps.clock import database_now
from apps.dashboard.views import summarise_statuses
from apps.incidents.services import acknowledge_incident
from tests.escalation.helpers import open_for
from tests.factories import CheckFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_polled_incident_list_updates_the_tab_counts_and_summary(member, owner, check):
    client = Client()
    client.force_login(member)
    url = reverse("dashboard:incident-list")
    incident = open_for(check, database_now())
    body = client.get(url, **HTMX).content.decode().strip()
    assert body.startswith('<div id="incident-table"')
    assert (
        'id="tab-open" href="?state=open" aria-current="page">Open <span class="count">(1)' in body
    )
    assert 'data-status-summary="Incidents: 1 open, 0 acknowledged."' in body
    acknowledge_incident(incident_id=incident.id, user=owner, now=database_now())
    body = client.get(url, **HTMX).content.decode()
    assert 'Acknowledged <span class="count">(1)</span>' in body
    assert 'data-status-summary="Incidents: 0 open, 1 acknowledged."' in body


def test_check_list_summary_names_the_down_checks_up_to_three():
    counts = {Check.Status.UP: 2, Check.Status.DOWN: 4}
    down = [CheckFactory.build(name=n) for n in ("a", "b", "c", "d")]
    assert summarise_statuses(counts, down) == "Checks: 2 up, 4 down (a, b, c, …)."
    assert summarise_statuses({Check.Status.UP: 1}, []) == "Checks: 1 up."
    assert summarise_statuses({}, []) == "No checks."


def test_history_restore_of_the_incident_and_check_pages_gets_the_whole_page(member, check):
    client = Client()
    client.force_login(member)
    incident = open_for(check, database_now())
    restore = {**HTMX, "HTTP_HX_HISTORY_RESTORE_REQUEST": "true"}
    for url in (
        reverse("dashboard:incident-detail", args=[incident.id]),
        reverse("dashboard:check-detail", args=[check.id]),
    ):
        assert "<html" in client.get(url, **restore).content.decode()
        assert "<html" not in client.get(url, **HTMX).content.decode()
