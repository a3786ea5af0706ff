"""Badges for every check of a team (Healthchecks' "*"), the two-state variant (late counts as
up) and Healthchecks' badge JSON ("counts"): signed like the others, and old URLs unchanged."""

import json

import pytest
from django.core import signing
from django.urls import reverse

from apps.badges.links import badge_url, badge_url_for_tag
from apps.badges.render import render_counts_json, two_state
from apps.badges.tokens import SALT, TagBadgeClaim, make_tag_badge_token, read_badge_token
from apps.checks.models import Check
from tests.factories import CheckFactory

from .test_badges import path_of, texts


def test_tag_tokens_are_the_same_as_before_the_variants_existed(team):
    # README links made before this change must keep working and keep their URL.
    assert make_tag_badge_token(team.pk, "db") == signing.Signer(salt=SALT).sign_object(
        {"t": team.pk, "g": "db"}, compress=False
    )


@pytest.mark.parametrize(("tag", "states"), [("db", 3), ("db", 2), (None, 3), (None, 2)], ids=str)
def test_tokens_round_trip(tag, states):
    token = make_tag_badge_token(7, tag, states=states)
    assert read_badge_token(token) == TagBadgeClaim(7, tag, states)


@pytest.mark.parametrize(
    "payload",
    [
        {"t": 1, "s": 3},
        {"t": 1, "s": "2"},
        {"t": 1, "s": 2.0},
        {"t": 1, "s": True},
        {"t": 1, "g": None},
        {"t": True},
        {"s": 2},
    ],
    ids=["explicit-3", "str-2", "float-2", "bool", "null-tag", "bool-team", "no-team"],
)
def test_well_signed_but_malformed_team_payloads_get_404(client, db, payload):
    token = signing.Signer(salt=SALT).sign_object(payload)
    assert client.get(reverse("badges:svg", args=[token])).status_code == 404
    assert client.get(reverse("badges:counts", args=[token])).status_code == 404


@pytest.mark.parametrize(
    ("statuses", "states", "expected"),
    [
        ([], 3, {"status": "up", "total": 0, "grace": 0, "down": 0}),
        (["up", "late"], 3, {"status": "late", "total": 2, "grace": 1, "down": 0}),
        (["up", "late"], 2, {"status": "up", "total": 2, "grace": 1, "down": 0}),
        (["late", "down", "down"], 2, {"status": "down", "total": 3, "grace": 1, "down": 2}),
        (["new", "paused", "unknown"], 3, {"status": "up", "total": 3, "grace": 0, "down": 0}),
    ],
    ids=["empty", "late-3", "late-2", "down-wins", "tocsin-only-statuses"],
)
def test_counts_json_in_healthchecks_words(statuses, states, expected):
    assert json.loads(render_counts_json(statuses, states=states)) == expected


def test_two_state_folds_late_into_up():
    assert two_state(["late", "down", "up", "paused"]) == ["up", "down", "up", "paused"]


def test_team_badge_summarises_every_check_of_the_team_only(client, team, other_team, settings):
    CheckFactory(team=team, tags="a", status=Check.Status.UP)
    CheckFactory(team=team, tags="", status=Check.Status.DOWN)
    CheckFactory(team=other_team, status=Check.Status.DOWN)
    svg = client.get(path_of(badge_url_for_tag(team, None), settings))
    assert texts(svg.content) == [team.name, "1 down"]
    counts = client.get(path_of(badge_url_for_tag(team, None, "counts"), settings))
    assert counts["Content-Type"] == "application/json"
    assert json.loads(counts.content) == {"status": "down", "total": 2, "grace": 0, "down": 1}


def test_two_state_tag_badge_shows_a_late_check_as_up(client, team, settings):
    CheckFactory(team=team, tags="etl", status=Check.Status.LATE)
    two = client.get(path_of(badge_url_for_tag(team, "etl", states=2), settings))
    three = client.get(path_of(badge_url_for_tag(team, "etl"), settings))
    assert texts(two.content) == ["etl", "up"]
    assert texts(three.content) == ["etl", "1 late"]


def test_counts_for_a_single_check(client, check, settings):
    Check.objects.filter(pk=check.pk).update(status=Check.Status.LATE)
    response = client.get(path_of(badge_url(check, "counts"), settings))
    assert json.loads(response.content) == {"status": "late", "total": 1, "grace": 1, "down": 0}


def test_team_badge_of_a_deleted_team_is_404(client, team, settings):
    url = path_of(badge_url_for_tag(team, None, "counts"), settings)
    team.delete()
    assert client.get(url).status_code == 404


def test_counts_badge_is_cacheable_and_conditional(client, team, settings):
    url = path_of(badge_url_for_tag(team, None, "counts"), settings)
    first = client.get(url)
    assert "max-age=60" in first["Cache-Control"] and first["ETag"]
    assert client.get(url, headers={"If-None-Match": first["ETag"]}).status_code == 304
