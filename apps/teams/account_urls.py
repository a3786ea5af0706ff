"""Password reset: Django's views under Django's URL names (its templates and emails reverse
them without a namespace), rendered with our templates."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import PasswordResetView

urlpatterns = [
    path("password-reset/", PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
