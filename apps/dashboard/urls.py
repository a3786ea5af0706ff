from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.check_list, name="check-list"),
    path("checks/new/", views.check_create, name="check-create"),
    path("checks/<uuid:check_id>/", views.check_detail, name="check-detail"),
    path("incidents/<int:incident_id>/", views.incident_detail, name="incident-detail"),
    path(
        "incidents/<int:incident_id>/<str:action>/",
        views.incident_action,
        name="incident-action",
    ),
]
