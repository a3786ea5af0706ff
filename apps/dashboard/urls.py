from django.urls import path

from . import account, api_keys, badges_page, check_defaults, incident_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.check_list, name="check-list"),
    path("team/", views.switch_team, name="switch-team"),
    path("account/", account.account, name="account"),
    path("sweeper-banner/", views.sweeper_banner, name="sweeper-banner"),
    path(
        "teams/<int:team_id>/check-defaults/",
        check_defaults.check_defaults,
        name="check-defaults",
    ),
    path("team/badges/", badges_page.badges, name="badges"),
    path("team/api-keys/", api_keys.api_keys, name="api-keys"),
    path("team/api-keys/<int:key_id>/revoke/", api_keys.api_key_revoke, name="api-key-revoke"),
    path("checks/new/", views.check_create, name="check-create"),
    path("checks/schedule-preview/", views.schedule_preview, name="schedule-preview"),
    path("checks/<uuid:check_id>/", views.check_detail, name="check-detail"),
    path("checks/<uuid:check_id>/edit/", views.check_edit, name="check-edit"),
    path("checks/<uuid:check_id>/regenerate/", views.check_regenerate, name="check-regenerate"),
    path("checks/<uuid:check_id>/delete/", views.check_delete, name="check-delete"),
    path("checks/<uuid:check_id>/<str:action>/", views.check_action, name="check-action"),
    path("checks/<uuid:check_id>/pings/<int:n>/body", views.ping_body, name="ping-body"),
    path("incidents/", incident_views.incident_list, name="incident-list"),
    path("incidents/<int:incident_id>/", incident_views.incident_detail, name="incident-detail"),
    path(
        "incidents/<int:incident_id>/notes/",
        incident_views.incident_note,
        name="incident-note",
    ),
    path(
        "incidents/<int:incident_id>/silence/",
        incident_views.incident_silence,
        name="incident-silence",
    ),
    path(
        "incidents/<int:incident_id>/<str:action>/",
        incident_views.incident_action,
        name="incident-action",
    ),
]
