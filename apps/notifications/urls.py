from django.urls import path

from . import link_views, views

app_name = "notifications"

urlpatterns = [
    # The one-click actions in alerts: the signed token is the credential (no login).
    path("a/<str:token>/", link_views.action, name="action"),
    path("channels/", views.channel_list, name="channel-list"),
    path("channels/grouping/", views.grouping_settings, name="grouping"),
    path("channels/new/<str:kind>/", views.channel_create, name="channel-create"),
    path("channels/<int:channel_id>/", views.channel_detail, name="channel-detail"),
    path("channels/<int:channel_id>/edit/", views.channel_edit, name="channel-edit"),
    path("channels/<int:channel_id>/test/", views.channel_test, name="channel-test"),
    path("channels/<int:channel_id>/secret/", views.channel_rotate_secret, name="channel-secret"),
    path("channels/<int:channel_id>/delete/", views.channel_delete, name="channel-delete"),
]
