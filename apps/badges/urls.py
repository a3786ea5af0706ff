from django.urls import re_path

from . import views

app_name = "badges"

# Signer tokens: URL-safe base64 and ":"; longer ones cannot be ours (and are not read).
SIGNED = r"(?P<token>[A-Za-z0-9_\-:]{1,400})"

urlpatterns = [
    re_path(rf"^badge/{SIGNED}\.svg\Z", views.badge, {"fmt": "svg"}, name="svg"),
    re_path(rf"^badge/{SIGNED}\.json\Z", views.badge, {"fmt": "json"}, name="json"),
    re_path(rf"^badge/{SIGNED}\.counts\.json\Z", views.badge, {"fmt": "counts"}, name="counts"),
]
