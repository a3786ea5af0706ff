"""A badge over real HTTP follows a check that a wrapped job reports to, through the sweeper."""

import pytest

from apps.badges.links import badge_url, badge_url_for_tag
from tests.client.conftest import python_command, run_tocsin, sweep_after_pings
from tests.factories import CheckFactory
from tests.live import fetch

from .test_badges import texts

pytestmark = pytest.mark.django_db(transaction=True)


def test_badges_follow_a_wrapped_job_from_new_to_up_to_down(live_app_url, team, settings):
    check = CheckFactory(team=team, name="nightly-backup", tags="backup")
    ping_url = f"{live_app_url}/ping/{check.ping_token}"
    check_path = badge_url(check).removeprefix(settings.SITE_URL)
    tag_path = badge_url_for_tag(team, "backup").removeprefix(settings.SITE_URL)

    def shown(path):
        reply = fetch(live_app_url, "GET", path)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "image/svg+xml"
        return texts(reply.body)

    assert shown(check_path) == ["nightly-backup", "new"]

    assert run_tocsin("run", "--url", ping_url, "--", "true").returncode == 0
    sweep_after_pings(check)
    assert shown(check_path) == ["nightly-backup", "up"]
    assert shown(tag_path) == ["backup", "up"]
    etag = fetch(live_app_url, "GET", check_path).headers["ETag"]
    assert fetch(live_app_url, "GET", check_path, headers={"If-None-Match": etag}).status == 304

    failing = run_tocsin("run", "--url", ping_url, "--", *python_command("raise SystemExit(3)"))
    assert failing.returncode == 3
    sweep_after_pings(check)
    assert shown(check_path) == ["nightly-backup", "down"]
    assert shown(tag_path) == ["backup", "1 down"]
    assert fetch(live_app_url, "GET", check_path, headers={"If-None-Match": etag}).status == 200
