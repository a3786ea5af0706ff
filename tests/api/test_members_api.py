"""/api/tocsin/v1/members/: the user ids that escalation steps and rotations name, read-only."""

import pytest


def test_lists_the_teams_members_with_their_roles(api, owner, member, viewer, outsider):
    owner.first_name, owner.last_name = "Alice", "Liddell"
    owner.save()
    response = api.get("/api/tocsin/v1/members/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(r["id"], r["username"], r["role"]) for r in rows] == sorted(
        [
            (owner.id, "alice", "owner"),
            (member.id, "bob", "member"),
            (viewer.id, viewer.username, "viewer"),
        ],
        key=lambda row: row[1],
    )
    assert rows[0]["name"] == "Alice Liddell"
    # Email addresses stay out; another team's people are not listed.
    assert "@" not in response.content.decode()
    assert outsider.username not in response.content.decode()


def test_a_member_id_found_here_is_accepted_as_a_step_target(api, member):
    member_id = api.get("/api/tocsin/v1/members/").json()["results"][0]["id"]
    assert member_id == member.id
    response = api.post(
        "/api/tocsin/v1/escalation-policies/",
        {"name": "bob first", "steps": [{"targets": [{"kind": "user", "id": member_id}]}]},
    )
    assert response.status_code == 201, response.json()


def test_read_one_member_and_404s(api, member, outsider):
    assert api.get(f"/api/tocsin/v1/members/{member.id}/").json()["username"] == "bob"
    for path in (f"/api/tocsin/v1/members/{outsider.id}/", "/api/tocsin/v1/members/999999/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert api.get("/api/tocsin/v1/members/abc/").status_code == 404
    assert api.get(f"/api/tocsin/v1/members/{'9' * 40}/").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_members_cannot_be_changed_through_the_api(api, ro_api, member, method):
    path = "/api/tocsin/v1/members/" if method == "post" else f"/api/tocsin/v1/members/{member.id}/"
    assert getattr(api, method)(path).status_code == 405
    assert getattr(ro_api, method)(path).status_code in (403, 405)
    assert api.get(f"/api/tocsin/v1/members/{member.id}/").json()["role"] == "member"


def test_keys_are_scoped_and_required(ro_api, other_api, anon_api, member):
    assert ro_api.get("/api/tocsin/v1/members/").status_code == 200
    assert other_api.get(f"/api/tocsin/v1/members/{member.id}/").status_code == 404
    assert other_api.get("/api/tocsin/v1/members/").json()["results"] == []
    assert anon_api.get("/api/tocsin/v1/members/").status_code == 401
