"""Status badges: signed URLs without login, the status in words, hostile names escaped,
conditional GETs, and the badge following the check's status."""

import json
import xml.etree.ElementTree as ET

import pytest
from django.core import signing
from django.urls import reverse

from apps.badges.links import badge_url, badge_url_for_tag
from apps.badges.render import MAX_LABEL, Badge, Tone, render_svg, tag_badge, text_width
from apps.badges.tokens import SALT, make_check_badge_token, make_tag_badge_token
from apps.checks.models import Check
from tests.factories import CheckFactory

SVG = "{http://www.w3.org/2000/svg}"


def path_of(url: str, settings) -> str:
    assert url.startswith(settings.SITE_URL + "/badge/"), url
    return url.removeprefix(settings.SITE_URL)


def parse_svg(svg: bytes | str) -> ET.Element:
    # Our own output, parsed to prove it is well-formed XML.
    return ET.fromstring(svg)  # noqa: S314


def texts(svg: bytes | str) -> list[str]:
    """The text the badge shows."""
    root = parse_svg(svg)
    return [node.text for node in root.iter(f"{SVG}text")]


def test_check_badge_shows_name_and_status_in_words_without_login(client, check, settings):
    response = client.get(path_of(badge_url(check), settings))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert texts(response.content) == ["nightly-backup", "new"]
    root = parse_svg(response.content)
    assert root.find(f"{SVG}title").text == "nightly-backup: new"
    assert root.get("aria-label") == "nightly-backup: new"


@pytest.mark.parametrize(
    ("status", "colour"),
    [
        (Check.Status.UP, "#2e7d32"),
        (Check.Status.LATE, "#b26a00"),
        (Check.Status.DOWN, "#c62828"),
        (Check.Status.PAUSED, "#6b6b6b"),
    ],
    ids=["up", "late", "down", "paused"],
)
def test_badge_follows_the_checks_status(client, check, settings, status, colour):
    url = path_of(badge_url(check), settings)
    first = client.get(url)

    Check.objects.filter(pk=check.pk).update(status=status)
    second = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert second.status_code == 200
    assert second["ETag"] != first["ETag"]
    assert texts(second.content)[1] == status.value
    assert f'fill="{colour}"'.encode() in second.content


def test_badge_url_is_stable_and_unguessable(check, other_team, settings):
    other = CheckFactory(team=other_team)

    assert badge_url(check) == badge_url(check)
    assert badge_url(check) != badge_url(other)
    assert str(check.ping_token) not in badge_url(check)
    signature = badge_url(check).removesuffix(".svg").rsplit(":", 1)[1]
    assert len(signature) >= 40


def test_cache_headers_and_304_on_if_none_match(client, check, settings):
    url = path_of(badge_url(check), settings)

    response = client.get(url)
    again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    head = client.head(url, HTTP_IF_NONE_MATCH=response["ETag"])
    stale = client.get(url, HTTP_IF_NONE_MATCH='"somethingelse"')

    assert response["ETag"].startswith('"') and response["ETag"].endswith('"')
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert cache_control == {"public", "max-age=60"}
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == response["ETag"]
    assert "max-age=60" in again["Cache-Control"]
    assert head.status_code == 304
    assert stale.status_code == 200


def test_svg_cannot_run_scripts_when_opened_directly(client, check, settings):
    response = client.get(path_of(badge_url(check), settings))

    assert response["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert response["X-Content-Type-Options"] == "nosniff"


HOSTILE = "<script>alert(\"x\")</script> & 'q' ]]><!--"


def test_hostile_check_name_is_escaped(client, team, settings):
    hostile = CheckFactory(team=team, name=HOSTILE[:MAX_LABEL])

    response = client.get(path_of(badge_url(hostile), settings))

    assert b"<script" not in response.content
    assert b"&lt;script&gt;" in response.content
    assert texts(response.content)[0] == HOSTILE[:MAX_LABEL]


def test_hostile_tag_is_escaped_in_svg_and_json(client, team, settings):
    CheckFactory(team=team, tags=f"{HOSTILE} nightly")
    tag = HOSTILE.split()[0]  # '<script>alert("x")</script>'

    svg = client.get(path_of(badge_url_for_tag(team, tag), settings))
    shields = client.get(path_of(badge_url_for_tag(team, tag, "json"), settings))

    assert b"<script" not in svg.content
    assert texts(svg.content) == [tag, "new"]
    assert json.loads(shields.content)["label"] == tag


def test_control_characters_and_long_names_do_not_break_the_svg():
    badge = Badge("line\nbreak\x00nul\x1b" + "w" * 100, "up", Tone.GOOD)

    svg = render_svg(badge)

    label = texts(svg)[0]
    assert label.startswith("line breaknul")
    assert len(label) == MAX_LABEL
    assert label.endswith("…")


def test_text_width_grows_with_the_text():
    assert text_width("down") < text_width("nightly-backup") < text_width("WWWWWWWWWWWWWW")


@pytest.mark.parametrize(
    ("statuses", "message", "tone"),
    [
        ([], "no checks", Tone.NEUTRAL),
        (["up", "up"], "up", Tone.GOOD),
        (["up", "down", "late", "down"], "2 down", Tone.BAD),
        (["up", "late", "paused"], "1 late", Tone.WARNING),
        (["new", "up"], "up", Tone.GOOD),
        (["paused", "new"], "new", Tone.NEUTRAL),
        (["paused"], "paused", Tone.NEUTRAL),
        (["up", "unknown"], "unknown", Tone.NEUTRAL),
    ],
    ids=["empty", "all-up", "down-wins", "late", "new-and-up", "new-and-paused", "paused", "unk"],
)
def test_tag_summary_takes_the_worst_status(statuses, message, tone):
    assert tag_badge("nightly", statuses) == Badge("nightly", message, tone)


def test_tag_badge_counts_only_the_teams_checks_with_exactly_that_tag(
    client, team, other_team, settings
):
    CheckFactory(team=team, tags="backup nightly", status=Check.Status.UP)
    CheckFactory(team=team, tags="nightly", status=Check.Status.DOWN)
    CheckFactory(team=team, tags="backups", status=Check.Status.DOWN)  # not "backup"
    CheckFactory(team=other_team, tags="backup", status=Check.Status.DOWN)  # not this team

    response = client.get(path_of(badge_url_for_tag(team, "backup"), settings))

    assert texts(response.content) == ["backup", "up"]


def test_tag_badge_reflects_status_changes(client, team, settings):
    first = CheckFactory(team=team, tags="etl", status=Check.Status.UP)
    CheckFactory(team=team, tags="etl", status=Check.Status.UP)
    url = path_of(badge_url_for_tag(team, "etl"), settings)
    assert texts(client.get(url).content) == ["etl", "up"]

    Check.objects.filter(pk=first.pk).update(status=Check.Status.DOWN)

    assert texts(client.get(url).content) == ["etl", "1 down"]


def test_tag_without_checks_is_a_badge_not_an_error(client, team, settings):
    response = client.get(path_of(badge_url_for_tag(team, "nothing-here"), settings))

    assert response.status_code == 200
    assert texts(response.content) == ["nothing-here", "no checks"]


def test_shields_endpoint_json(client, check, settings):
    Check.objects.filter(pk=check.pk).update(status=Check.Status.DOWN)

    response = client.get(path_of(badge_url(check, "json"), settings))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "schemaVersion": 1,
        "label": "nightly-backup",
        "message": "down",
        "color": "red",
        "cacheSeconds": 300,
    }
    assert (
        client.get(response.wsgi_request.path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code
        == 304
    )


def _tampered(token: str) -> list[str]:
    payload, signature = token.rsplit(":", 1)
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [
        f"{payload}:{flipped}",  # signature changed
        f"{payload[:-1]}x:{signature}",  # payload changed
        payload,  # signature dropped
        f"{payload}:",
    ]


def test_tampered_check_tokens_get_404(client, check, other_team):
    other = CheckFactory(team=other_team)
    token = make_check_badge_token(check.badge_key)
    # Another check's payload with this check's signature.
    other_payload = make_check_badge_token(other.badge_key).rsplit(":", 1)[0]
    swapped = f"{other_payload}:{token.rsplit(':', 1)[1]}"

    for bad in [*_tampered(token), swapped]:
        response = client.get(reverse("badges:svg", args=[bad]))
        assert response.status_code == 404, bad


def test_tampered_tag_token_cannot_reach_another_team(client, team, other_team):
    CheckFactory(team=other_team, tags="secret", status=Check.Status.DOWN)
    token = make_tag_badge_token(team.pk, "secret")
    forged_payload = make_tag_badge_token(other_team.pk, "secret").rsplit(":", 1)[0]

    response = client.get(reverse("badges:svg", args=[f"{forged_payload}:{token.rsplit(':')[-1]}"]))

    assert response.status_code == 404


def test_tokens_signed_for_another_purpose_get_404(client, check):
    # The same payload signed without the badge salt (as another feature might): refused.
    foreign = signing.Signer().sign_object({"c": check.pk.hex})
    other_salt = signing.Signer(salt=SALT + ".other").sign_object({"c": check.pk.hex})

    assert client.get(reverse("badges:svg", args=[foreign])).status_code == 404
    assert client.get(reverse("badges:svg", args=[other_salt])).status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"c": "not-a-uuid"},
        {"c": 5},
        {"t": "1", "g": "x"},
        {"t": True, "g": "x"},
        {"t": 1, "g": ["x"]},
        {"t": 1, "g": "x", "c": "y"},
        ["c"],
        "c",
    ],
    ids=["bad-uuid", "int-uuid", "str-team", "bool-team", "list-tag", "extra-key", "list", "str"],
)
def test_well_signed_but_malformed_payloads_get_404(client, db, payload):
    token = signing.Signer(salt=SALT).sign_object(payload)

    assert client.get(reverse("badges:svg", args=[token])).status_code == 404


def test_deleted_check_and_team_get_404(client, team, check, settings):
    check_url = path_of(badge_url(check), settings)
    tag_url = path_of(badge_url_for_tag(team, "nightly"), settings)

    check.delete()
    team.delete()

    assert client.get(check_url).status_code == 404
    assert client.get(tag_url).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/badge/.svg",
        "/badge/abc.svg",
        "/badge/abc.png",
        "/badge/" + "a" * 401 + ".svg",
        "/badge/%3Cscript%3E.svg",
        "/badge/abc%00:def.svg",
        "/badge/abc/def.svg",
    ],
    ids=["empty", "garbage", "other-format", "oversized", "hostile", "nul", "slash"],
)
def test_malformed_badge_paths_get_404(client, db, path):
    assert client.get(path).status_code == 404


def test_only_get_and_head_are_allowed(client, check, settings):
    url = path_of(badge_url(check), settings)

    assert client.post(url).status_code == 405
    assert client.put(url).status_code == 405


def test_check_badge_is_one_query(client, check, settings, django_assert_num_queries):
    url = path_of(badge_url(check), settings)

    with django_assert_num_queries(1):
        client.get(url)
