"""Gather page URLs."""

from django.urls import path

from webapp.gather import views

app_name = "gather"
urlpatterns = [
    path("new/", views.gather_new, name="new"),
    path("attempts/", views.attempt_browser, name="attempts"),
    path("attempts/<int:pk>/", views.attempt_detail, name="attempt"),
]
