from django.urls import path

from . import views

app_name = "teams"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("teams/<int:team_id>/members/", views.members, name="members"),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/role/",
        views.change_role,
        name="change-role",
    ),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/remove/",
        views.remove_member,
        name="remove-member",
    ),
    path("teams/<int:team_id>/invitations/", views.invite, name="invite"),
    path(
        "teams/<int:team_id>/invitations/<int:invitation_id>/revoke/",
        views.revoke_invitation,
        name="revoke-invitation",
    ),
    path("invitations/<str:token>/", views.accept_invitation, name="accept-invitation"),
    path(
        "reports/unsubscribe/<str:token>/",
        views.unsubscribe_from_reports,
        name="unsubscribe-reports",
    ),
]
