from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from apps.checks.views import ping
from apps.dashboard.views import healthz
from apps.teams.views import LoginView

urlpatterns = [
    # In production the WSGI fast path (config/wsgi.py) answers /ping/ before Django; this
    # route serves the same protocol everywhere else.
    re_path(r"^ping/(?P<rest>.*)$", ping, name="ping"),
    path("healthz", healthz, name="healthz"),
    path("api/", include("apps.api.urls")),
    path("", include("apps.badges.urls")),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("apps.teams.account_urls")),
    path("", include("apps.teams.urls")),
    path("admin/", admin.site.urls),
    path("escalation/", include("apps.escalation.urls")),
    path("", include("apps.dashboard.urls")),
    path("", include("apps.notifications.urls")),
]
