"""Tocsin's own 403, 404 and 500 pages: the 403 says why (the role needed) and logs one line
without a traceback; the 404 gives nothing away about other teams; the 500 renders with no
request context at all."""

import logging

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from tests.factories import CheckFactory


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_403_says_why_and_which_role_is_needed(viewer):
    response = client_for(viewer).get(reverse("dashboard:check-create"))
    assert response.status_code == 403
    assert '<p id="error-reason" class="lead">Only admins and owners can create checks.</p>' in (
        response.text
    )
    assert "admin (also creates and edits checks" in response.text
    assert "<title>Not allowed · Tocsin</title>" in response.text


def test_403_on_a_role_check_names_the_role(viewer, check):
    response = client_for(viewer).post(reverse("dashboard:check-action", args=[check.id, "pause"]))
    assert response.status_code == 403
    assert "This needs the admin role or higher." in response.text


def test_403_is_logged_as_one_line_without_a_traceback(viewer, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client_for(viewer).get(reverse("dashboard:check-create"))
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    record = records[0]
    assert record.exc_info is None and record.exc_text is None
    assert record.getMessage() == (
        "Forbidden (Permission denied): /checks/new/ (Only admins and owners can create checks.)"
    )
    assert "Traceback" not in caplog.text


def test_404_is_ours_and_the_same_for_another_teams_check(owner, other_team):
    theirs = CheckFactory(team=other_team)
    client = client_for(owner)
    for url in (reverse("dashboard:check-detail", args=[theirs.id]), "/no/such/page/"):
        response = client.get(url)
        assert response.status_code == 404
        assert "There is no such page, or it belongs to a team you are not in." in response.text
        assert theirs.name not in response.text


def test_anonymous_404_offers_the_login(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert f'href="{reverse("login")}"' in response.text


@pytest.mark.django_db
def test_500_page_renders_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "/static/css/tocsin.css" in body
