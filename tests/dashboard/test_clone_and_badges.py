"""Cloning a check from its page, and the team's badges page."""

import uuid
from datetime import timedelta

import pytest
from django.conf import settings

from apps.badges.links import badge_url, badge_url_for_tag
from apps.checks.models import Check
from tests.factories import CheckFactory

NEW = "/checks/new/"


def test_clone_form_is_prefilled_with_the_checks_settings(owner_client, check):
    check.schedule_kind, check.schedule_expression = "cron", "0 3 * * 1-5"
    check.timezone, check.grace, check.tags = "Europe/Riga", timedelta(minutes=20), "db nightly"
    check.save()
    response = owner_client.get(NEW, {"from": str(check.id)})
    assert response.status_code == 200
    form = response.context["form"]
    assert form["name"].value() == "copy of nightly-backup"
    assert form["slug"].value() == ""
    assert form["schedule_expression"].value() == "0 3 * * 1-5"
    assert form["timezone"].value() == "Europe/Riga"
    assert 'id="cloned-from"' in response.text


def test_saving_a_clone_makes_a_new_check_with_its_own_ping_url(owner_client, check):
    parent = CheckFactory(team=check.team, name="db")
    check.depends_on.add(parent)
    form = owner_client.get(NEW, {"from": str(check.id)}).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        widget_data = {}
        if hasattr(field.widget, "widgets"):  # the duration inputs: number and unit
            for i, part in enumerate(field.widget.decompress(value)):
                widget_data[f"{name}_{i}"] = "" if part is None else part
            data.update(widget_data)
        elif isinstance(value, list):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = value if not isinstance(value, bool) else ("on" if value else "")
    response = owner_client.post(NEW + f"?from={check.id}", data)
    assert response.status_code == 302, response.context["form"].errors
    copy = Check.objects.exclude(id__in=[check.id, parent.id]).get()
    assert copy.name == "copy of nightly-backup"
    assert copy.id != check.id and copy.badge_key != check.badge_key
    assert copy.period == check.period and copy.grace == check.grace
    assert list(copy.depends_on.all()) == [parent]
    assert not copy.pings.exists()


def test_check_page_offers_clone_to_admins_only(client, owner, viewer, check):
    client.force_login(owner)
    assert f'href="/checks/new/?from={check.id}"' in client.get(f"/checks/{check.id}/").text
    client.force_login(viewer)
    assert "clone-check" not in client.get(f"/checks/{check.id}/").text


@pytest.mark.parametrize("raw", ["not-a-uuid", "x" * 5000, "<script>", "", str(uuid.uuid4())])
def test_clone_of_a_bad_or_unknown_id_is_404(owner_client, raw):
    assert owner_client.get(NEW, {"from": raw}).status_code == 404


def test_clone_of_another_teams_check_is_404(client, outsider, check):
    client.force_login(outsider)
    assert client.get(NEW, {"from": str(check.id)}).status_code == 404


def test_viewer_may_not_clone(client, viewer, check):
    client.force_login(viewer)
    response = client.get(NEW, {"from": str(check.id)})
    assert response.status_code == 403
    assert "admins and owners" in response.text


def test_badges_page_lists_team_tag_and_check_badges_in_every_format(client, viewer, check):
    CheckFactory(team=check.team, name="<b>hostile</b>", tags="web")
    client.force_login(viewer)
    response = client.get("/team/badges/")
    assert response.status_code == 200
    html = response.text
    for url in (
        badge_url_for_tag(check.team, None, "svg"),
        badge_url_for_tag(check.team, "backup", "json"),
        badge_url_for_tag(check.team, "web", "counts"),
        badge_url(check, "svg"),
        badge_url(check, "json"),
        badge_url(check, "counts"),
    ):
        assert url in html
    assert html.count('data-copy="badge-') >= 4 * 5  # team, 3 tags, 2 checks: 4 copies each
    assert "<b>hostile</b>" not in html and "&lt;b&gt;hostile&lt;/b&gt;" in html
    assert str(check.id) not in html  # the ping URL is a secret; badges never carry it


def test_badge_urls_on_the_page_serve_badges(client, owner, check):
    client.force_login(owner)
    client.get("/team/badges/")
    svg = client.get(badge_url(check, "svg").removeprefix(settings.SITE_URL))
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"


def test_badges_page_shows_only_the_current_teams_badges(client, outsider, check):
    client.force_login(outsider)
    html = client.get("/team/badges/").text
    assert badge_url(check, "svg") not in html
    assert "nightly-backup" not in html


def test_badges_page_needs_a_login(client, check):
    response = client.get("/team/badges/")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_badges_page_refuses_post(owner_client):
    assert owner_client.post("/team/badges/").status_code == 405
