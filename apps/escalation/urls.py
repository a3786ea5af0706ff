from django.urls import path

from . import views

app_name = "escalation"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("policies/new/", views.policy_create, name="policy-create"),
    path("policies/<int:pk>/", views.policy_detail, name="policy-detail"),
    path("policies/<int:pk>/delete/", views.policy_delete, name="policy-delete"),
    path("policies/<int:pk>/checks/", views.policy_checks, name="policy-checks"),
    path("policies/<int:pk>/steps/", views.step_add, name="step-add"),
    path(
        "policies/<int:pk>/steps/<int:step_id>/<str:operation>/",
        views.step_change,
        name="step-change",
    ),
    path("rotations/new/", views.rotation_create, name="rotation-create"),
    path("rotations/<int:pk>/", views.rotation_detail, name="rotation-detail"),
    path("rotations/<int:pk>/delete/", views.rotation_delete, name="rotation-delete"),
    path("rotations/<int:pk>/overrides/", views.override_add, name="override-add"),
    path(
        "rotations/<int:pk>/overrides/<int:override_id>/delete/",
        views.override_delete,
        name="override-delete",
    ),
    path("silences/", views.silence_list, name="silence-list"),
    path("silences/preview/", views.silence_preview, name="silence-preview"),
    path("silences/<int:pk>/expire/", views.silence_expire, name="silence-expire"),
    path("maintenance/", views.maintenance_list, name="maintenance-list"),
    path("maintenance/<int:pk>/delete/", views.maintenance_delete, name="maintenance-delete"),
]
