"""The members page: roles, invitations by email link, removing members. Owners manage the
team, everyone in it may look, another team is a 404, and the last owner always stays."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.core import mail, signing
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from apps.teams.invitations import (
    SALT,
    InvalidInvitation,
    make_invitation_token,
    read_invitation_token,
)
from apps.teams.models import Invitation, Membership
from tests.factories import MembershipFactory

User = get_user_model()
PASSWORD = "a long enough passphrase"


def client_for(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def members_url(team):
    return reverse("teams:members", args=[team.id])


def role_url(team, membership):
    return reverse("teams:change-role", args=[team.id, membership.id])


def remove_url(team, membership):
    return reverse("teams:remove-member", args=[team.id, membership.id])


def invite_url(team):
    return reverse("teams:invite", args=[team.id])


def membership(user, team):
    return Membership.objects.get(user=user, team=team)


def roles(team):
    return dict(team.memberships.values_list("user__username", "role"))


def invite(client, team, email="new@example.com", role="member", **extra):
    with_on_commit = client.post(invite_url(team), {"email": email, "role": role, **extra})
    return with_on_commit


def emailed_link(message) -> str:
    match = re.search(r"https://tocsin\.example(/invitations/[^/\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


@pytest.fixture
def everyone(owner, member, viewer):
    return owner, member, viewer


# --- the page --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "member", "viewer"])
def test_everyone_in_the_team_sees_the_members_and_their_roles(request, team, everyone, who):
    response = client_for(request.getfixturevalue(who)).get(members_url(team))
    assert response.status_code == 200
    for username, role in (("alice", "owner"), ("bob", "member"), ("vera", "viewer")):
        assertContains(response, username)
        assertContains(response, f'data-role="{role}"')


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_only_owners_see_the_management_controls(request, team, everyone, who):
    response = client_for(request.getfixturevalue(who)).get(members_url(team))
    assertNotContains(response, "Send invitation")
    assertNotContains(response, "/remove/")
    assertNotContains(response, "/role/")
    owner_page = client_for(everyone[0]).get(members_url(team))
    assertContains(owner_page, "Send invitation")
    assertContains(owner_page, '<label for="role-')


def test_outsider_gets_404_on_the_members_page(team, everyone, outsider):
    response = client_for(outsider).get(members_url(team))
    assert response.status_code == 404
    assertNotContains(response, "alice", status_code=404)


def test_anonymous_visitor_is_sent_to_login(client, team):
    response = client.get(members_url(team))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_top_bar_links_to_the_current_teams_members(owner_client, team):
    page = owner_client.get(reverse("dashboard:check-list"))
    assertContains(page, f'href="{members_url(team)}">Team</a>')


# --- roles -----------------------------------------------------------------------------------


def test_owner_changes_a_role(team, everyone):
    owner, member, _ = everyone
    client = client_for(owner)
    response = client.post(role_url(team, membership(member, team)), {"role": "admin"})
    assert response.status_code == 302
    assert roles(team)["bob"] == "admin"
    page = client.get(members_url(team))
    assertContains(page, "bob is now Admin.")


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_non_owner_gets_403_changing_roles_and_nothing_changes(request, team, everyone, who):
    target = membership(everyone[2], team)
    before = roles(team)
    user = request.getfixturevalue(who)
    response = client_for(user).post(role_url(team, target), {"role": "owner"})
    assert response.status_code == 403
    assert roles(team) == before


def test_admin_cannot_manage_the_team_either(team, everyone):
    admin = MembershipFactory(team=team, role=Membership.Role.ADMIN, user__username="adam").user
    before = roles(team)
    client = client_for(admin)
    assert (
        client.post(role_url(team, membership(admin, team)), {"role": "owner"}).status_code == 403
    )
    assert client.post(remove_url(team, membership(everyone[1], team))).status_code == 403
    assert invite(client, team).status_code == 403
    assert roles(team) == before
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("value", ["", "superuser", "OWNER", "x" * 10_000, "<script>"])
def test_malformed_role_is_refused_with_a_message_and_nothing_changes(team, everyone, value):
    owner, member, _ = everyone
    before = roles(team)
    client = client_for(owner)
    response = client.post(role_url(team, membership(member, team)), {"role": value})
    assert response.status_code == 302
    assert roles(team) == before
    page = client.get(members_url(team))
    assert re.search(r"This field is required|Choose owner, admin, member or viewer", page.text)
    assert "<script>" not in page.text.split("<main", 1)[1]


def test_missing_role_field_changes_nothing(team, everyone):
    owner, member, _ = everyone
    before = roles(team)
    client_for(owner).post(role_url(team, membership(member, team)), {})
    assert roles(team) == before


def test_last_owner_cannot_step_down(team, everyone):
    owner = everyone[0]
    client = client_for(owner)
    client.post(role_url(team, membership(owner, team)), {"role": "member"})
    assert roles(team)["alice"] == "owner"
    assertContains(client.get(members_url(team)), "A team needs at least one owner")


def test_an_owner_may_step_down_when_another_owner_remains(team, everyone):
    owner, member, _ = everyone
    client = client_for(owner)
    client.post(role_url(team, membership(member, team)), {"role": "owner"})
    client.post(role_url(team, membership(owner, team)), {"role": "viewer"})
    assert roles(team) == {"alice": "viewer", "bob": "owner", "vera": "viewer"}
    # Now a viewer, alice can no longer manage the team.
    response = client.post(role_url(team, membership(member, team)), {"role": "member"})
    assert response.status_code == 403


def test_changing_a_role_of_another_teams_member_is_404(team, everyone, outsider, other_team):
    theirs = membership(outsider, other_team)
    response = client_for(everyone[0]).post(role_url(team, theirs), {"role": "viewer"})
    assert response.status_code == 404
    assert membership(outsider, other_team).role == "owner"


def test_outsider_gets_404_on_every_management_action(team, everyone, outsider):
    target = membership(everyone[1], team)
    client = client_for(outsider)
    before = roles(team)
    assert client.post(role_url(team, target), {"role": "viewer"}).status_code == 404
    assert client.post(remove_url(team, target)).status_code == 404
    assert invite(client, team).status_code == 404
    assert roles(team) == before
    assert not Invitation.objects.exists()


def test_management_requires_post_and_csrf(team, everyone):
    owner, member, _ = everyone
    target = membership(member, team)
    assert client_for(owner).get(role_url(team, target)).status_code == 405
    assert client_for(owner).get(remove_url(team, target)).status_code == 405
    strict = client_for(owner, enforce_csrf_checks=True)
    assert strict.post(role_url(team, target), {"role": "viewer"}).status_code == 403
    assert strict.post(remove_url(team, target)).status_code == 403
    assert (
        strict.post(invite_url(team), {"email": "a@example.com", "role": "member"}).status_code
        == 403
    )
    assert roles(team)["bob"] == "member"


# --- removing ----------------------------------------------------------------------------------


def test_owner_removes_a_member_who_then_loses_access(team, everyone, check):
    owner, member, _ = everyone
    response = client_for(owner).post(remove_url(team, membership(member, team)))
    assert response.status_code == 302
    assert "bob" not in roles(team)
    assert User.objects.filter(username="bob").exists()  # the account stays
    check_page = client_for(member).get(reverse("dashboard:check-detail", args=[check.id]))
    assert check_page.status_code == 404


def test_last_owner_cannot_be_removed(team, everyone):
    owner = everyone[0]
    client = client_for(owner)
    client.post(remove_url(team, membership(owner, team)))
    assert roles(team)["alice"] == "owner"
    assertContains(client.get(members_url(team)), "The last owner cannot be removed")


def test_removing_an_unknown_membership_is_404(team, everyone):
    url = reverse("teams:remove-member", args=[team.id, 999_999])
    assert client_for(everyone[0]).post(url).status_code == 404


# --- invitations -------------------------------------------------------------------------------


def test_invitation_email_link_lets_a_new_person_sign_up_and_join(
    team, everyone, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client_for(everyone[0]), team, "newbie@example.com", "viewer")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newbie@example.com"]
    assert message.subject == "alice invited you to Ops on Tocsin"
    link = emailed_link(message)

    visitor = Client()
    page = visitor.get(link)
    assertContains(page, "You are invited to join <strong>Ops</strong> as viewer")
    assertContains(page, "Create account and join")
    joined = visitor.post(
        link, {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert joined.status_code == 302
    user = User.objects.get(username="newbie")
    assert user.email == "newbie@example.com"
    assert membership(user, team).role == "viewer"
    assert visitor.session[SESSION_KEY] == str(user.pk)
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    # The link works once.
    again = Client().get(link)
    assert again.status_code == 400
    assertContains(again, "already been used", status_code=400)


def test_an_existing_user_logs_in_and_accepts(team, everyone, other_team, outsider):
    owner = everyone[0]
    invitation = Invitation.objects.create(
        team=team, email=outsider.email, role="member", invited_by=owner, created_at=_now()
    )
    link = reverse("teams:accept-invitation", args=[make_invitation_token(invitation.id)])
    anonymous = Client().get(link)
    assertContains(anonymous, f'href="{reverse("login")}?next={quote(link)}"')
    client = client_for(outsider)
    assertContains(client.get(link), "Join Ops as charlie")
    assert client.post(link).status_code == 302
    assert membership(outsider, team).role == "member"
    assert membership(outsider, other_team).role == "owner"  # their own team is untouched
    assert client.session["team_id"] == team.id  # the dashboard now shows the new team


def test_accepting_never_demotes_an_existing_member(team, everyone):
    owner, member, _ = everyone
    invitation = Invitation.objects.create(
        team=team, email="bob@example.com", role="viewer", invited_by=owner, created_at=_now()
    )
    link = reverse("teams:accept-invitation", args=[make_invitation_token(invitation.id)])
    client_for(member).post(link)
    assert roles(team)["bob"] == "member"


def _now():
    from apps.clock import database_now

    return database_now()


def _invitation(team, owner, **kw):
    return Invitation.objects.create(
        team=team,
        email="x@example.com",
        role="member",
        invited_by=owner,
        created_at=_now(),
        **kw,
    )


def test_withdrawn_invitation_no_longer_works(team, everyone):
    owner = everyone[0]
    invitation = _invitation(team, owner)
    url = reverse("teams:revoke-invitation", args=[team.id, invitation.id])
    assert client_for(owner).post(url).status_code == 302
    link = reverse("teams:accept-invitation", args=[make_invitation_token(invitation.id)])
    response = Client().post(link, {"username": "z", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 400
    assertContains(response, "withdrawn", status_code=400)
    assert not User.objects.filter(username="z").exists()


def test_outsider_cannot_withdraw_another_teams_invitation(team, everyone, outsider):
    invitation = _invitation(team, everyone[0])
    url = reverse("teams:revoke-invitation", args=[team.id, invitation.id])
    assert client_for(outsider).post(url).status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_expired_invitation_link_says_so(team, everyone):
    invitation = _invitation(team, everyone[0])
    token = make_invitation_token(invitation.id)
    with pytest.raises(InvalidInvitation, match="expired"):
        read_invitation_token(token, max_age=timedelta(seconds=-1))


HOSTILE_TOKENS = {
    "garbage": "not-a-token",
    "tampered": None,  # built in the test
    "other salt": signing.dumps({"i": 1}, salt="tocsin.incidents.action"),
    "no id": signing.dumps({"x": 1}, salt=SALT),
    "string id": signing.dumps({"i": "<script>"}, salt=SALT),
    "oversized": "a" * 5000,
    "unknown id": signing.dumps({"i": 987654}, salt=SALT),
}


@pytest.mark.parametrize("name", HOSTILE_TOKENS)
def test_bad_invitation_links_are_400_with_a_reason_and_change_nothing(team, everyone, name):
    invitation = _invitation(team, everyone[0])
    token = HOSTILE_TOKENS[name] or make_invitation_token(invitation.id)[:-2] + "xx"
    before = (User.objects.count(), Membership.objects.count())
    client = Client()
    url = reverse("teams:accept-invitation", args=[token])
    response = client.post(url, {"username": "z", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 400
    assertContains(response, 'role="alert"', status_code=400)
    assert (User.objects.count(), Membership.objects.count()) == before
    assert "<script>" not in response.text.split("<main", 1)[1]


def test_invalid_account_on_the_invitation_page_creates_nothing(team, everyone):
    invitation = _invitation(team, everyone[0])
    link = reverse("teams:accept-invitation", args=[make_invitation_token(invitation.id)])
    before = (User.objects.count(), Membership.objects.count())
    response = Client().post(link, {"username": "bob", "password1": "x", "password2": "y"})
    assert response.status_code == 400
    assertContains(response, "A user with that username already exists.", status_code=400)
    assert (User.objects.count(), Membership.objects.count()) == before
    invitation.refresh_from_db()
    assert invitation.is_pending


INVALID_INVITES = {
    "missing email": ({"email": ""}, "This field is required."),
    "malformed email": ({"email": "nobody"}, "Enter a valid email address."),
    "oversized email": ({"email": "x" * 250 + "@example.com"}, "at most 254 characters"),
    "hostile email": ({"email": "<script>@x"}, "Enter a valid email address."),
    "unknown role": ({"role": "god"}, "Choose owner, admin, member or viewer."),
    "missing role": ({"role": ""}, "This field is required."),
}


@pytest.mark.parametrize(("change", "message"), INVALID_INVITES.values(), ids=INVALID_INVITES)
def test_invalid_invitation_says_why_and_sends_nothing(
    team, everyone, change, message, django_capture_on_commit_callbacks
):
    data = {"email": "new@example.com", "role": "member", **change}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(everyone[0]).post(invite_url(team), data)
    assert response.status_code == 400
    assertContains(response, message, status_code=400)
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_invitation_subject_keeps_the_team_name_unescaped(
    team, everyone, django_capture_on_commit_callbacks
):
    team.name = "R&D <ops>"
    team.save()
    with django_capture_on_commit_callbacks(execute=True):
        invite(client_for(everyone[0]), team)
    assert mail.outbox[0].subject == "alice invited you to R&D <ops> on Tocsin"
    assert '"R&D <ops>"' in mail.outbox[0].body


def test_pending_invitations_are_listed_for_the_owner(team, everyone):
    _invitation(team, everyone[0])
    page = client_for(everyone[0]).get(members_url(team))
    assertContains(page, "x@example.com as member")
    assertNotContains(client_for(everyone[1]).get(members_url(team)), "x@example.com")
