from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.check_list, name="check-list"),
    path("team/", views.switch_team, name="switch-team"),
    path("checks/new/", views.check_create, name="check-create"),
    path("checks/schedule-preview/", views.schedule_preview, name="schedule-preview"),
    path("checks/<uuid:check_id>/", views.check_detail, name="check-detail"),
    path("checks/<uuid:check_id>/pings/<int:n>/body", views.ping_body, name="ping-body"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident-detail"),
    path(
        "incidents/<int:incident_id>/<str:action>/",
        views.incident_action,
        name="incident-action",
    ),
]
