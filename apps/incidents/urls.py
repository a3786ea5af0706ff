from django.urls import path

from . import views

app_name = "incidents"

urlpatterns = [
    path("a/<str:token>/", views.action, name="action"),
]
